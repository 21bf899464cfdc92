import math

import pytest
import torch
from torch import nn

from lightning_modules.flops import mfu, training_flops_per_token
from lightning_modules.model_loading import tiny_llama_config
from lightning_modules.optimization import adamw, cosine_with_warmup, parameter_groups
from transformers import LlamaConfig


def test_no_decay_on_vectors_and_frozen_parameters_are_left_out() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[2].requires_grad_(False)
    decay, plain = parameter_groups(model.named_parameters(), weight_decay=0.1)
    assert decay["params"] == [model[0].weight] and decay["weight_decay"] == 0.1
    assert {id(p) for p in plain["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    assert plain["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="nothing to train"):
        adamw(parameter_groups(nn.Linear(2, 2).requires_grad_(False).named_parameters(), 0.1), 1e-3, (0.9, 0.999), 1e-8)


def test_cosine_with_warmup_shape() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = cosine_with_warmup(optimizer, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    lrs = []
    for _ in range(111):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5) and lrs[110] == pytest.approx(0.1)


def test_flops_per_token_matches_the_llama7b_count() -> None:
    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)
    per_token = training_flops_per_token(config, seq_len=2048)
    # 6 x (6.74B params - 131M embedding) + attention: the usual ~4.3e10 figure
    assert per_token == pytest.approx(6 * (6.738e9 - 32000 * 4096) + 12 * 32 * 4096 * 2048, rel=1e-3)
    assert mfu(1000.0, per_token, 1e15) == pytest.approx(per_token * 1000 / 1e15)
    assert math.isfinite(training_flops_per_token(LlamaConfig(**tiny_llama_config()), 32))
