"""Print what a stage trains, by group, before the first step."""

from __future__ import annotations

from collections import defaultdict

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

GROUPS = ("embed_tokens", "lm_head", "lora", "other")


def group_of(name: str) -> str:
    if "lora_" in name:
        return "lora"
    for group in ("embed_tokens", "lm_head"):
        if group in name:
            return group
    return "other"


def parameter_budget(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``group -> (trainable, total)`` parameter counts; rows frozen by ``new_rows_only`` count as trainable
    here (they are in the optimizer) and are reported separately by the table."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, p in model.named_parameters():
        numel = getattr(p, "ds_numel", p.numel())  # ZeRO-3 leaves a rank an empty tensor and the whole's size
        entry = counts[group_of(name)]
        entry[1] += numel
        if p.requires_grad:
            entry[0] += numel
    return {g: (counts[g][0], counts[g][1]) for g in GROUPS if g in counts}


def format_budget(budget: dict[str, tuple[int, int]], frozen_rows_note: str = "") -> str:
    trainable = sum(t for t, _ in budget.values())
    total = sum(n for _, n in budget.values())
    lines = [f"{'group':<14}{'trainable':>16}{'total':>16}{'share':>9}"]
    for group, (t, n) in budget.items():
        lines.append(f"{group:<14}{t:>16,}{n:>16,}{t / max(n, 1):>9.2%}")
    lines.append(f"{'all':<14}{trainable:>16,}{total:>16,}{trainable / max(total, 1):>9.2%}")
    if frozen_rows_note:
        lines.append(frozen_rows_note)
    return "\n".join(lines)


class ParameterBudget(pl.Callback):
    """Prints the trainable / total table by group at fit start."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        budget = parameter_budget(pl_module)
        note = ""
        rows = getattr(pl_module, "frozen_vocab_rows", 0)
        if rows:
            note = f"new_rows_only: rows [0, {rows}) of the trainable embedding/head stay fixed"
        rank_zero_info("parameter budget:\n" + format_budget(budget, note))
