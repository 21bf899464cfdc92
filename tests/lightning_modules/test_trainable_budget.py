"""The LLaMA-7B LoRA stage trains ~570M parameters (r 64 on seven projections, embedding and head) -- what a
checkpoint holds -- counted on a meta-device model, so no memory is spent."""

import torch

from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from callbacks.parameter_budget import format_budget, parameter_budget
from lightning_modules.causal_lm import CausalLMModule

LLAMA7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=False)


def test_llama7b_lora_stage_trains_570m_of_6_9b() -> None:
    module = CausalLMModule(model_config={**LLAMA7B, "vocab_size": 49953})
    with torch.device("meta"):
        module.configure_model()
    module.apply_freeze_policy(LoRAWithEmbeddings(r=64, alpha=32, dropout=0.0))
    budget = parameter_budget(module)
    trainable = sum(t for t, _ in budget.values())
    lora = 32 * 64 * (4 * (4096 + 4096) + 3 * (4096 + 11008))
    assert budget["lora"] == (lora, lora)
    assert budget["embed_tokens"] == budget["lm_head"] == (49953 * 4096, 49953 * 4096)
    assert budget["other"][0] == 0
    assert trainable == lora + 2 * 49953 * 4096 and 565e6 < trainable < 575e6
    assert "all" in format_budget(budget)
