"""A Trainer interrupted mid-epoch and resumed from its checkpoint sees exactly the uninterrupted blocks."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules.wiki_blocks import WikiBlocksDataModule
from tests.lightning_modules.tiny_training import tiny_trainer


class BlockRecorder(L.LightningModule):
    """Trains nothing; records the first token ids of every block it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[list[int]]] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        assert torch.equal(batch["input_ids"], batch["labels"])
        self.seen.append(batch["input_ids"][:, :8].tolist())
        return self.weight.sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def make_trainer(root: Path, max_steps: int, callbacks: list) -> L.Trainer:
    return tiny_trainer(root, callbacks, max_steps=max_steps, enable_checkpointing=bool(callbacks))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_fit_continues_with_the_next_unseen_block(
    num_workers: int, zh_tokenizer_dir: Path, wiki_sample: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "wiki.jsonl"
    corpus.write_text("".join(wiki_sample.read_text(encoding="utf-8").splitlines(keepends=True)[:3]), encoding="utf-8")

    def data() -> WikiBlocksDataModule:
        return WikiBlocksDataModule(
            str(zh_tokenizer_dir),
            str(corpus),
            block_size=256,
            batch_size=8,
            cache_dir=str(tmp_path / "cache"),
            val_fraction=0.0,
            num_proc=1,
            num_workers=num_workers,
        )

    full = BlockRecorder()
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1, filename="{step}"
    )
    dm = data()
    dm.setup()
    per_epoch = len(dm.train_dataloader())
    total = per_epoch + per_epoch // 2  # into the second epoch
    make_trainer(tmp_path, total, [checkpoints]).fit(full, data())
    assert len(full.seen) == total and full.seen[per_epoch:] != full.seen[: total - per_epoch]  # reshuffled
    interrupted_at = per_epoch // 2 + 1
    resumed = BlockRecorder()
    make_trainer(tmp_path / "resumed", total, []).fit(
        resumed, data(), ckpt_path=tmp_path / "ckpt" / f"step={interrupted_at}.ckpt"
    )
    assert resumed.seen == full.seen[interrupted_at:]
