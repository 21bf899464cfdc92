"""AdamW over trainable parameters only, and the cosine-with-warmup learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from tokenization.errors import UserError


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float, no_decay: Iterable[nn.Parameter] = ()
) -> list[dict]:
    """Trainable parameters split into decayed matrices and undecayed vectors (norms, biases). ``no_decay``
    parameters are kept out of the optimizer's own decay (their decay, if any, is applied by their owner)."""
    skip = {id(p) for p in no_decay}
    decay, plain = [], []
    for _, p in named_parameters:
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and id(p) not in skip else plain).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def adamw(
    groups: list[dict], lr: float, betas: tuple[float, float], eps: float, allow_fused: bool = True
) -> torch.optim.AdamW:
    """AdamW, fused when allowed and every parameter lives on a device that supports it (CUDA, CPU), else
    foreach. Lightning's mixed precision refuses to clip the gradients of a fused optimizer (it unscales them
    inside its step), so a run that clips under mixed precision passes ``allow_fused=False``."""
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise UserError("no trainable parameters: the freeze policy left nothing to train")
    fused = allow_fused and all(p.device.type in ("cuda", "cpu") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warmup from 0 to the peak, then cosine down to ``min_lr_ratio`` x peak at ``total_steps``
    (transformers' ``get_cosine_schedule_with_warmup`` when ``min_lr_ratio`` is 0)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
