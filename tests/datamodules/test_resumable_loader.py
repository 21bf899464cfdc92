"""ResumableLoader: seeded order, disjoint rank shares, and exact continuation after save/restore."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from datamodules.resumable_loader import ResumableLoader
from tests.lightning_modules.tiny_training import tiny_trainer
from tokenization.errors import UserError


class Numbers(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(i)


def flat(batches: list[torch.Tensor]) -> list[int]:
    return [int(x) for b in batches for x in b]


def take(loader: ResumableLoader, k: int) -> list[torch.Tensor]:
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == k:
            break
    return out


def test_epochs_are_seeded_permutations_that_differ() -> None:
    loader = ResumableLoader(Numbers(40), 4, seed=7, rank=0, world_size=1)
    first, second = flat(list(loader)), flat(list(loader))  # a finished epoch rolls over to the next
    assert sorted(first) == sorted(second) == list(range(40))
    assert first != second
    again = ResumableLoader(Numbers(40), 4, seed=7, rank=0, world_size=1)
    assert flat(list(again)) == first
    assert flat(list(ResumableLoader(Numbers(40), 4, seed=8, rank=0, world_size=1))) != first
    assert flat(list(ResumableLoader(Numbers(40), 4, shuffle=False, rank=0, world_size=1))) == list(range(40))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_state_restore_continues_with_the_next_unseen_batch(num_workers: int) -> None:
    def make() -> ResumableLoader:
        return ResumableLoader(Numbers(30), 4, seed=3, rank=0, world_size=1, num_workers=num_workers)

    reference = make()
    uninterrupted = flat(list(reference) + list(reference))  # two epochs: 7 + 7 batches
    interrupted = make()
    seen = take(interrupted, 5)  # workers have prefetched more than 5; they must not count
    state = interrupted.state_dict()
    assert (state["epoch"], state["batches_consumed"]) == (0, 5)
    resumed = make()
    resumed.load_state_dict(state)
    rest = list(resumed) + list(resumed)  # the rest of epoch 0, then epoch 1
    assert flat(seen + rest) == uninterrupted


def test_state_at_the_end_of_an_epoch_points_to_the_next_epoch() -> None:
    loader = ResumableLoader(Numbers(12), 4, seed=0, rank=0, world_size=1)
    list(loader)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batches_consumed"] == 0


def test_two_ranks_read_disjoint_shares_that_cover_the_data() -> None:
    n, batch = 50, 4
    ranks = [ResumableLoader(Numbers(n), batch, seed=1, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == (n // 2) // batch
    shares = [set(flat(list(loader))) for loader in ranks]
    assert not shares[0] & shares[1]
    assert len(shares[0] | shares[1]) == 2 * len(ranks[0]) * batch  # all but the drop_last remainder
    full = ResumableLoader(Numbers(48), 4, seed=1, rank=0, world_size=2), ResumableLoader(
        Numbers(48), 4, seed=1, rank=1, world_size=2
    )
    assert set(flat(list(full[0]))) | set(flat(list(full[1]))) == set(range(48))


def test_drop_last_false_pads_ranks_evenly_and_keeps_short_batches() -> None:
    loaders = [ResumableLoader(Numbers(7), 2, shuffle=False, drop_last=False, rank=r, world_size=2) for r in range(2)]
    batches = [[b.tolist() for b in loader] for loader in loaders]
    assert batches == [[[0, 2], [4, 6]], [[1, 3], [5, 0]]]


def test_resuming_with_other_settings_is_refused() -> None:
    state = ResumableLoader(Numbers(20), 4, seed=1, rank=0, world_size=1).state_dict()
    with pytest.raises(UserError, match="batch_size: checkpoint 4 vs now 5"):
        ResumableLoader(Numbers(20), 5, seed=1, rank=0, world_size=1).load_state_dict(state)
    with pytest.raises(UserError, match="num_samples"):
        ResumableLoader(Numbers(21), 4, seed=1, rank=0, world_size=1).load_state_dict(state)


def test_too_little_data_for_one_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="no batch of 4"):
        list(ResumableLoader(Numbers(3), 4, rank=0, world_size=1))


class Recorder(L.LightningModule):
    """Trains nothing; records every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[int]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen.append(batch.tolist())
        return (self.weight * batch.float().mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class NumbersData(L.LightningDataModule):
    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(Numbers(22), 4, seed=5, rank=self.trainer.global_rank, world_size=self.trainer.world_size)


def trainer(root: Path, max_steps: int, callbacks: list | None = None) -> L.Trainer:
    return tiny_trainer(root, callbacks or [], max_steps=max_steps, enable_checkpointing=bool(callbacks))


def test_lightning_resume_mid_epoch_and_after_an_epoch_boundary(tmp_path: Path) -> None:
    # 5 batches an epoch; 12 steps span three epochs. Checkpoints after steps 3 (mid-epoch 0), 5 (epoch end)
    # and 8 (mid-epoch 1); each resumed run must see exactly the uninterrupted run's remaining batches.
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1, filename="{step}"
    )
    full = Recorder()
    trainer(tmp_path, 12, [checkpoints]).fit(full, NumbersData())
    assert len(full.seen) == 12
    for step in (3, 5, 8):
        resumed = Recorder()
        trainer(tmp_path / f"resume{step}", 12).fit(
            resumed, NumbersData(), ckpt_path=tmp_path / "ckpt" / f"step={step}.ckpt"
        )
        assert resumed.seen == full.seen[step:], f"resumed from step {step}"
