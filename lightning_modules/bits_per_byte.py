"""``val/bits_per_byte`` and ``val/bits_per_char``: the validation loss in units that compare tokenizers.

The summed nats of the labelled target tokens over ``ln 2`` times the UTF-8 bytes (characters) those targets stand
for, each token's share read from the tokenizer's lookup table (:mod:`tokenization.token_byte_lengths`). Summed
over every device and batch before dividing, so the figure is the exact ratio over the whole validation set.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from tokenization.constants import IGNORE_INDEX
from tokenization.token_byte_lengths import token_byte_lengths


def token_lengths_tensor(tokenizer, rows: int) -> Tensor:
    """``[2, max(rows, len(tokenizer))]`` int64: bytes and characters per token id; ids past the tokenizer
    (padding rows of the embedding) stand for no text."""
    table = token_byte_lengths(tokenizer)
    lengths = torch.zeros(2, max(rows, len(table.bytes)), dtype=torch.long)
    lengths[0, : len(table.bytes)] = torch.tensor(table.bytes, dtype=torch.long)
    lengths[1, : len(table.chars)] = torch.tensor(table.chars, dtype=torch.long)
    return lengths


class BitsPerByte(Metric):
    """Sums nats, bytes and characters of scored targets; ``compute`` gives bits per byte and per character."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("nats", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("bytes", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("chars", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, mean_loss: Tensor, targets: Tensor, lengths: Tensor) -> None:
        """``mean_loss``: mean nats over the labelled ``targets`` (``IGNORE_INDEX`` elsewhere); ``lengths``: the
        ``[2, vocab]`` table of :func:`token_lengths_tensor` on the same device."""
        labelled = targets[targets != IGNORE_INDEX]
        self.nats += mean_loss.detach().float() * labelled.numel()
        picked = lengths[:, labelled]
        self.bytes += picked[0].sum()
        self.chars += picked[1].sum()

    def compute(self) -> dict[str, Tensor]:
        bits = self.nats / math.log(2)
        return {"bits_per_byte": bits / self.bytes.clamp(min=1), "bits_per_char": bits / self.chars.clamp(min=1)}
