"""Few padding tokens per SFT batch: length-grouped batch order plus padding to the batch's longest example.

Alpaca examples range from ~20 to 512 tokens, so a batch of randomly drawn examples is mostly padding. An
epoch's order is therefore: seeded shuffle, cut into
mega-chunks of ``group_batches`` batches, sort each chunk by length, cut into batches, shuffle the batches.
Batches hold examples of similar length, while which examples meet in a chunk, and the order batches come
in, still change every epoch. The batch holding the longest example goes first so that a ``max_seq_length``
too large for memory fails at step one, not hours in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.resumable_loader import ResumableLoader
from datamodules.sft_examples import SFTExample
from tokenization.constants import IGNORE_INDEX
from tokenization.errors import UserError


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_batches: int = 64
) -> list[list[int]]:
    """One epoch's batches of example indices; the same (seed, epoch) always gives the same batches."""
    if batch_size < 1 or group_batches < 1:
        raise UserError(f"batch_size and group_batches must be positive, not {batch_size} and {group_batches}")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    chunk = batch_size * group_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        group = sorted(order[start : start + chunk], key=lambda i: lengths[i], reverse=True)
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    batches = [batches[i] for i in rng.permutation(len(batches)).tolist()]
    if batches:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Deterministic batches for evaluation: sorted by length, longest first."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class SFTCollator:
    """Right-pads a list of examples to the longest (optionally rounded up to ``pad_to_multiple_of``).

    The attention mask comes from the lengths, not from ``input_ids != pad_id``, so padding with a real token id (EOS when a tokenizer has no pad token) can never mask a real EOS.
    """

    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: Sequence[SFTExample]) -> dict[str, torch.Tensor]:
        width = max(len(e) for e in examples)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example)
            input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
            labels[row, example.prompt_length : n] = input_ids[row, example.prompt_length : n]
            attention_mask[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad token (``[PAD]`` from ``merge --pad_token``, ``<pad>``), else UNK, else EOS.

    The fallback id only fills positions that the attention mask hides and the labels ignore.
    """
    for candidate in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise UserError("tokenizer has no pad, unk or eos token to pad with")


class LengthGroupedLoader(ResumableLoader):
    """:class:`ResumableLoader` (resumable, rank-aware, seeded per epoch) with length-grouped batches.

    Only the epoch's batch plan differs: :func:`length_grouped_batches`, then rank ``r`` of ``world_size``
    takes every ``world_size``-th batch, all ranks the same count. The position (epoch, batches consumed)
    is saved in Lightning checkpoints exactly as for pretraining.
    """

    def __init__(self, dataset, lengths: Sequence[int], batch_size: int, *, group_batches: int = 64, **kwargs) -> None:
        super().__init__(dataset, batch_size, drop_last=False, **kwargs)
        if len(lengths) != len(dataset):
            raise ValueError(f"{len(lengths)} lengths for {len(dataset)} examples")
        self.lengths = list(lengths)
        self.group_batches = group_batches

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size) // self.world_size

    def batch_indices(self, epoch: int) -> list[list[int]]:
        batches = length_grouped_batches(self.lengths, self.batch_size, self.seed, epoch, self.group_batches)
        return batches[self.rank :: self.world_size][: len(self)]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "group_batches": self.group_batches}

    def load_state_dict(self, state: dict) -> None:
        if state.get("group_batches") != self.group_batches:
            raise UserError(
                f"cannot resume the data position: group_batches was {state.get('group_batches')!r} in the "
                f"checkpoint and is {self.group_batches!r} now; resume with the same value"
            )
        super().load_state_dict(state)


class FixedBatchLoader:
    """Iterates fixed batches of a dataset (e.g. :func:`sorted_batches`), the same every pass: for evaluation.

    Not a ``DataLoader`` on purpose, like :class:`ResumableLoader`: Lightning then leaves the per-rank batches
    alone instead of trying to inject a ``DistributedSampler``.
    """

    def __init__(self, dataset, batches: list[list[int]], collate_fn, num_workers: int = 0) -> None:
        self.dataset, self.batches, self.collate_fn, self.num_workers = dataset, batches, collate_fn, num_workers

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(DataLoader(self.dataset, batch_sampler=self.batches, collate_fn=self.collate_fn, num_workers=self.num_workers))
