"""The analytic FLOP count against what PyTorch's FLOP counter sees in a real forward + backward of the module's
training loss. Attention runs eagerly here: the CPU's fused attention kernel is invisible to the counter."""

import pytest
import torch
from lightning.fabric.utilities.throughput import measure_flops

from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.flops import training_flops
from lightning_modules.model_loading import tiny_llama_config


def eager_module(**config) -> CausalLMModule:
    arguments = tiny_llama_config(**{k: v for k, v in config.items() if k != "num_key_value_heads"})
    module = CausalLMModule(model_config={**arguments, **config})
    module.configure_model()
    module.causal_lm.set_attn_implementation("eager")
    return module


def measured_training_flops(module: CausalLMModule, input_ids: torch.Tensor) -> int:
    batch = {"input_ids": input_ids, "labels": input_ids.clone()}
    return measure_flops(module, lambda: module.loss(batch)[0], loss_fn=lambda loss: loss)


@pytest.mark.parametrize(
    "config, batch, length",
    [
        (dict(vocab_size=160), 2, 32),
        (dict(vocab_size=300, hidden_size=96, num_hidden_layers=3, num_attention_heads=6, intermediate_size=200), 3, 48),
    ],
)
def test_analytic_flops_match_a_measured_training_step(config, batch, length) -> None:
    module = eager_module(**config)
    input_ids = torch.randint(0, config["vocab_size"], (batch, length), generator=torch.Generator().manual_seed(0))
    measured = measured_training_flops(module, input_ids)
    assert training_flops(module.causal_lm.config, [length] * batch) == pytest.approx(measured, rel=0.05)


def test_grouped_query_attention_counts_smaller_key_value_projections() -> None:
    module = eager_module(vocab_size=160, num_key_value_heads=1)
    input_ids = torch.randint(0, 160, (2, 40), generator=torch.Generator().manual_seed(1))
    measured = measured_training_flops(module, input_ids)
    assert training_flops(module.causal_lm.config, [40, 40]) == pytest.approx(measured, rel=0.05)


def test_a_padded_batch_counts_what_its_sequences_cost_alone() -> None:
    module = eager_module(vocab_size=160)
    generator = torch.Generator().manual_seed(2)
    short, long = torch.randint(0, 160, (1, 12), generator=generator), torch.randint(0, 160, (1, 40), generator=generator)
    alone = measured_training_flops(module, short) + measured_training_flops(module, long)
    assert training_flops(module.causal_lm.config, [12, 40]) == pytest.approx(alone, rel=0.05)
    assert training_flops(module.causal_lm.config, [40, 40]) > 1.5 * alone  # what counting the padding would give
