"""A training loader that can stop mid-epoch and continue with the next unseen batch.

:class:`ResumableLoader` makes the data position part of the Lightning checkpoint, so a resumed run neither
repeats nor skips data. It takes any map-style dataset with ``__len__`` and serves every stage's DataModule
(pretraining blocks, SFT records).

API::

    loader = ResumableLoader(dataset, batch_size=16, shuffle=True, seed=42, drop_last=True,
                             rank=trainer.global_rank, world_size=trainer.world_size,
                             num_workers=0, collate_fn=None, **other_torch_DataLoader_kwargs)
    len(loader)              # batches per epoch on this rank
    for batch in loader: ... # the rest of the current epoch; a finished epoch rolls over to the next
    loader.set_epoch(e)      # optional: jump to the start of epoch e (nothing calls it for you)
    state = loader.state_dict()   # {"epoch", "batches_consumed", ...}: saved by Lightning in checkpoints
    loader.load_state_dict(state) # the next iteration starts at the first unseen batch
    loader.batch_indices(e)  # this rank's batches of epoch e as index lists: the plan iteration follows

To plan batches differently (e.g. length-grouped SFT batches) subclass and override ``batch_indices(epoch)``
and ``__len__`` consistently; counting, roll-over and checkpointing stay as they are.

Ordering: epoch ``e`` visits ``numpy.random.default_rng([seed, e]).permutation(len(dataset))`` (or
``0..n-1`` with ``shuffle=False``). Under DDP rank ``r`` of ``world_size`` takes every ``world_size``-th
index of that order starting at ``r`` (DistributedSampler's assignment), so shares are disjoint and every
rank has the same number of batches. ``drop_last=True`` drops the fewer than ``world_size`` trailing
indices and each rank's incomplete last batch; ``drop_last=False`` pads by wrapping around (duplicates, as
DistributedSampler does) and keeps a short last batch.

How it fits Lightning (2.6): ``FitLoop.on_save_checkpoint`` stores ``state_dict()`` of every train loader
that has ``state_dict``/``load_state_dict`` in the fit loop's ``combined_loader`` state and hands it back
through ``load_state_dict`` before the first ``iter()`` on resume. The loader is deliberately *not* a
``torch.utils.data.DataLoader``: Lightning then leaves it alone (no sampler replacement under DDP, which is
why rank and world size are arguments). Position is counted when a batch is handed to the caller, not when
the sampler or a worker produces it, so worker prefetching (``num_workers > 0``) never over-counts. Lightning
does not prefetch from loaders with a length, which this one has; a caller that prefetches ``k`` batches
itself must save the state before taking them. The loader keeps its own epoch count (it exposes no
``sampler``, so Lightning's ``set_epoch`` never reaches it): an epoch ends when all its batches were handed
out, so an epoch cut short (``limit_train_batches``, ``max_steps``) is continued, not restarted, by the next
iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tokenization.errors import UserError


def _default_rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableLoader:
    """Seeded, rank-aware batch loader whose position (epoch, batches consumed) survives checkpoints."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        **dataloader_kwargs: Any,
    ) -> None:
        if not isinstance(dataset, Sized):
            raise TypeError("ResumableLoader needs a map-style dataset with __len__ and __getitem__")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if (rank is None) != (world_size is None):
            raise ValueError("pass both rank and world_size, or neither (then torch.distributed decides)")
        if rank is None or world_size is None:
            rank, world_size = _default_rank_and_world_size()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        for reserved in ("batch_size", "shuffle", "sampler", "batch_sampler", "drop_last"):
            if reserved in dataloader_kwargs:
                raise TypeError(f"ResumableLoader decides {reserved!r} itself; remove it from the arguments")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.dataloader_kwargs = dataloader_kwargs
        self.epoch = 0
        self.batches_consumed = 0  # of the current epoch, on this rank (equal on every rank)

    # ---- order ---------------------------------------------------------------------------------------
    def _rank_indices(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            order = order[: n - n % self.world_size]
        elif n % self.world_size:
            pad = self.world_size - n % self.world_size
            order = np.concatenate([order, np.resize(order, pad)])
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        n = len(self.dataset)
        per_rank = n // self.world_size if self.drop_last else -(-n // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def batch_indices(self, epoch: int) -> list[list[int]]:
        """Every batch of ``epoch`` on this rank, as dataset indices (the exact plan iteration follows)."""
        indices = self._rank_indices(epoch)[: len(self) * self.batch_size].tolist()
        return [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]

    # ---- iteration -----------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Starts ``epoch`` from its first batch unless the loader is already positioned inside it."""
        if epoch != self.epoch:
            self.epoch, self.batches_consumed = epoch, 0

    def _roll_over_finished_epoch(self) -> None:
        if self.batches_consumed >= len(self):
            self.epoch, self.batches_consumed = self.epoch + 1, 0

    def __iter__(self) -> Iterator[Any]:
        # A generator: the position is read at the first next(), after Lightning's set_epoch/load_state_dict.
        if len(self) == 0:
            raise ValueError(
                f"ResumableLoader: {len(self.dataset)} samples give no batch of {self.batch_size} on each of "
                f"{self.world_size} rank(s); use more data or a smaller batch_size"
            )
        self._roll_over_finished_epoch()
        plan = self.batch_indices(self.epoch)[self.batches_consumed :]
        loader = DataLoader(
            self.dataset,
            batch_sampler=plan,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            **self.dataloader_kwargs,
        )
        for batch in loader:
            self.batches_consumed += 1  # counted as handed over, so state_dict() inside the step includes it
            yield batch

    # ---- checkpointing -------------------------------------------------------------------------------
    def _layout(self) -> dict[str, Any]:
        """What must be unchanged for a saved position to mean the same batches on resume."""
        return {
            "seed": self.seed,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_samples": len(self.dataset),
        }

    def state_dict(self) -> dict[str, Any]:
        epoch, consumed = self.epoch, self.batches_consumed
        if consumed >= len(self):
            epoch, consumed = epoch + 1, 0
        return {"epoch": epoch, "batches_consumed": consumed, **self._layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = self._layout()
        changed = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in changed.items())
            raise UserError(
                f"cannot resume the data position: the loader changed since the checkpoint ({details}). "
                "Resume with the same data, block size / sequence length, seed, batch size and number of devices, "
                "or start a new stage from the checkpoint with `model.init_from` instead of `--ckpt_path`."
            )
        self.epoch = int(state["epoch"])
        self.batches_consumed = int(state["batches_consumed"])
