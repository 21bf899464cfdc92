import json
from pathlib import Path

import pytest
import torch

from datamodules.alpaca_sft import AlpacaSFTDataModule
from tokenization.constants import IGNORE_INDEX


@pytest.fixture(scope="module")
def datamodule(zh_tokenizer_dir: Path, alpaca_sample: Path) -> AlpacaSFTDataModule:
    dm = AlpacaSFTDataModule(str(zh_tokenizer_dir), str(alpaca_sample), batch_size=8, val_examples=20)
    dm.setup("fit")
    return dm


def test_batches_are_masked_padded_long_tensors(datamodule: AlpacaSFTDataModule):
    batch = next(iter(datamodule.train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    assert all(t.dtype == torch.long and t.shape == batch["input_ids"].shape for t in batch.values())
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["labels"][pad] == IGNORE_INDEX).all()
    assert (batch["input_ids"][:, 0] == 1).all()  # BOS
    assert ((batch["labels"] != IGNORE_INDEX).sum(1) > 0).all()  # every example keeps a label


def test_split_is_seeded_and_everything_accounted_for(datamodule: AlpacaSFTDataModule, zh_tokenizer_dir, alpaca_sample):
    raw = json.loads(alpaca_sample.read_text(encoding="utf-8"))
    assert len(datamodule.val_dataset) == 20
    assert len(datamodule.train_dataset) + 20 + datamodule.skip_report.total == len(raw)
    again = AlpacaSFTDataModule(str(zh_tokenizer_dir), str(alpaca_sample), val_examples=20)
    again.setup("fit")
    assert [e.input_ids for e in again.val_dataset.examples] == [e.input_ids for e in datamodule.val_dataset.examples]
    val = list(datamodule.val_dataloader())
    assert sum(len(b["input_ids"]) for b in val) == 20


@pytest.mark.shared_data
def test_whole_shared_dir_reports_every_skip(zh_tokenizer_dir: Path, shared_data: Path, capsys):
    dm = AlpacaSFTDataModule(str(zh_tokenizer_dir), str(shared_data / "alpaca_zh"), val_fraction=0.0)
    dm.setup("fit")
    assert dm.skip_report.counts["empty_output"] == 2
    assert "skipped: 2 (empty_output=2)" in dm.summary()
    assert len(dm.val_dataset) == 0


def test_pad_token_from_merge_is_used(zh_tokenizer_dir_with_pad: Path, alpaca_sample: Path):
    from transformers import AutoTokenizer

    pad = AutoTokenizer.from_pretrained(zh_tokenizer_dir_with_pad).convert_tokens_to_ids("[PAD]")
    dm = AlpacaSFTDataModule(str(zh_tokenizer_dir_with_pad), str(alpaca_sample),
                             batch_size=4, val_examples=0)
    dm.setup("fit")
    assert dm.pad_id == pad
    batch = next(iter(dm.train_dataloader()))
    assert (batch["attention_mask"] == 0).any() and (batch["input_ids"][batch["attention_mask"] == 0] == pad).all()
    assert len(dm.val_dataloader()) == 0
