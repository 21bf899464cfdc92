"""The LLaMA-7B LoRA stage trains ~570M parameters (r 64 on seven projections, embedding and head), and each stage's
checkpoint holds what it trained plus what its ancestors trained that it did not supersede -- counted on
meta-device models, so no memory is spent."""

import torch

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from callbacks.parameter_budget import format_budget, parameter_budget
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.stage_lineage import StageLineage

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


def stage_checkpoint(policy, lineage=None) -> dict:
    """What a 7B stage's checkpoint holds besides optimizer and loop state, on a meta-device model."""
    module = CausalLMModule(model_config={**LLAMA7B, "vocab_size": 49953}, original_vocab_size=32000)
    module.lineage = lineage
    with torch.device("meta"):
        module.configure_model()
        module.apply_freeze_policy(policy)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    return checkpoint


def parameters(tensors) -> int:
    return sum(t.numel() for t in tensors)


def test_llama7b_stage_checkpoints_carry_their_ancestors_in_1_2_gb_of_bf16() -> None:
    """Stage 1 holds its embedding; stage 2 its LoRA, embedding and head (stage 1's embedding is superseded);
    SFT its own plus stage 2's LoRA factors (stage 2's embedding and head are superseded) -- docs/training.md."""
    embedding = 49953 * 4096
    per_rank = 32 * (4 * (4096 + 4096) + 3 * (4096 + 11008))
    stage1 = stage_checkpoint(EmbeddingOnly(new_rows_only=True))
    stage2 = stage_checkpoint(LoRAWithEmbeddings(r=64, alpha=32, dropout=0.0),
                              StageLineage.after(stage1["zhllama"], stage1["state_dict"]))
    sft = stage_checkpoint(LoRAWithEmbeddings(r=8, alpha=32, dropout=0.05),
                           StageLineage.after(stage2["zhllama"], stage2["state_dict"]))
    own = [parameters(c["state_dict"].values()) for c in (stage1, stage2, sft)]
    carried = [parameters(t for s in c["zhllama"]["stages"] for t in s["trained"].values())
               for c in (stage1, stage2, sft)]
    assert own == [embedding, 64 * per_rank + 2 * embedding, 8 * per_rank + 2 * embedding]
    assert carried == [0, 0, 64 * per_rank]
    assert [round(2 * (o + c) / 1e9, 2) for o, c in zip(own, carried)] == [0.41, 1.14, 1.18]
