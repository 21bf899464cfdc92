"""``AlpacaSFTDataModule``: Alpaca instruction data -> masked, length-grouped, dynamically padded batches.

Batches are ``{"input_ids", "labels", "attention_mask"}`` LongTensors, labels ``-100`` on prompt and padding.
Records are read by :mod:`datamodules.alpaca_records`, tokenized by :mod:`datamodules.sft_examples`, batched by
:mod:`datamodules.sft_batching`; everything skipped on the way is counted in one report, printed at setup.
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from datamodules.alpaca_records import SUFFIXES, iter_alpaca_records, new_skip_report
from tokenization.corpus import OnBadRecord, resolve_inputs
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import load_tokenizer
from datamodules.prompt_templates import get_template
from datamodules.sft_batching import FixedBatchLoader, LengthGroupedLoader, SFTCollator, pad_token_id, sorted_batches
from datamodules.sft_examples import SFTExample, TruncationStats, encode_records


class SFTDataset(Dataset):
    def __init__(self, examples: list[SFTExample]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> SFTExample:
        return self.examples[index]

    @property
    def lengths(self) -> list[int]:
        return [len(e) for e in self.examples]


class AlpacaSFTDataModule(L.LightningDataModule):
    """Instruction-tuning data in the Alpaca format.

    Args:
        tokenizer: a Hugging Face tokenizer directory (``zhllama tokenizer merge`` output) or a ``.gguf`` file.
        inputs: Alpaca ``.json`` arrays / ``.jsonl[.gz]`` files, directories or globs.
        template: ``alpaca_v1`` (Chinese-Alpaca), ``llama2_zh`` (Chinese-Alpaca-2) or a string with ``{instruction}``.
        system_prompt: overrides the template's default system prompt (``llama2_zh``).
        max_seq_length: longest example in tokens; longer ones lose instruction tokens first, never the EOS.
        batch_size: examples per batch (per device).
        val_fraction: share of examples held out for validation (seeded), used when ``val_examples`` is unset.
        val_examples: exact number of held-out examples; overrides ``val_fraction``.
        seed: seeds the validation split and each epoch's batch order.
        num_workers: DataLoader worker processes.
        empty_output: ``skip`` (count and drop records with an empty output) or ``keep`` (train on EOS alone).
        on_bad_record: ``error`` stops at a malformed record naming file:line; ``skip`` counts it.
        group_batches: batches per length-sorted mega-chunk; larger = less padding, less shuffling.
        pad_to_multiple_of: round each batch's width up to this (e.g. 8 for tensor cores); ``None`` = exact.
    """

    def __init__(
        self,
        tokenizer: str,
        inputs: str | list[str],
        template: str = "alpaca_v1",
        max_seq_length: int = 512,
        batch_size: int = 32,
        val_fraction: float = 0.01,
        val_examples: int | None = None,
        seed: int = 42,
        num_workers: int = 0,
        empty_output: Literal["skip", "keep"] = "skip",
        on_bad_record: OnBadRecord = "error",
        system_prompt: str | None = None,
        group_batches: int = 64,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise UserError(f"val_fraction must be in [0, 1), not {val_fraction}")
        self.tokenizer_dir = tokenizer
        self.inputs = inputs
        self.template = get_template(template, system_prompt)
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.val_examples = val_examples
        self.seed = seed
        self.num_workers = num_workers
        self.empty_output = empty_output
        self.on_bad_record = on_bad_record
        self.group_batches = group_batches
        self.pad_to_multiple_of = pad_to_multiple_of
        self.skip_report = new_skip_report()
        self.truncation = TruncationStats()
        self.pad_id: int | None = None  # from the tokenizer, at setup
        self.train_dataset: SFTDataset | None = None
        self.val_dataset: SFTDataset | None = None

    def load_tokenizer(self):
        return load_tokenizer(self.tokenizer_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        try:
            resolve_inputs(self.inputs, SUFFIXES)
        except (FileNotFoundError, ValueError) as error:
            raise UserError(f"data.inputs: {error}") from None
        tokenizer = self.load_tokenizer()
        self.pad_id = pad_token_id(tokenizer)
        self.skip_report = new_skip_report()
        self.truncation = TruncationStats()
        records = iter_alpaca_records(self.inputs, self.on_bad_record, self.empty_output, self.skip_report)
        examples = encode_records(records, tokenizer, self.template, self.max_seq_length, self.skip_report, self.truncation)
        if not examples:
            raise UserError(f"{self.inputs}: no usable SFT examples; skipped: {self.skip_report.as_dict()}")
        train, val = self.split(examples)
        self.train_dataset, self.val_dataset = SFTDataset(train), SFTDataset(val)
        rank_zero_info(self.summary())

    def split(self, examples: list[SFTExample]) -> tuple[list[SFTExample], list[SFTExample]]:
        """Seeded hold-out; independent of batch order so changing batch_size never moves examples."""
        n_val = self.val_examples if self.val_examples is not None else int(round(len(examples) * self.val_fraction))
        if not 0 <= n_val < len(examples):
            raise UserError(f"val_examples={n_val} leaves no training data out of {len(examples)} examples")
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(self.seed)).tolist()
        held = set(order[:n_val])
        return [e for i, e in enumerate(examples) if i not in held], [examples[i] for i in sorted(held)]

    def summary(self) -> str:
        train, val = self.train_dataset, self.val_dataset
        assert train is not None and val is not None
        skipped = self.skip_report.as_dict()
        reasons = ", ".join(f"{k}={v}" for k, v in skipped["by_reason"].items() if v) or "none"
        lines = [
            f"SFT data: {len(train)} train / {len(val)} val examples, template {self.template.name}, "
            f"max_seq_length {self.max_seq_length}",
            f"  truncated: {self.truncation.prompt_truncated} prompts, {self.truncation.output_truncated} outputs "
            "(EOS kept)",
            f"  skipped: {skipped['total']} ({reasons})",
        ]
        lines += [f"    {example}" for example in skipped["first"]]
        return "\n".join(lines)

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> LengthGroupedLoader:
        """Resumable: its position is saved in Lightning checkpoints (see :mod:`datamodules.resumable_loader`)."""
        assert self.train_dataset is not None, "call setup() first"
        rank, world = self._rank_and_world()
        return LengthGroupedLoader(
            self.train_dataset,
            self.train_dataset.lengths,
            self.batch_size,
            group_batches=self.group_batches,
            seed=self.seed,
            rank=rank,
            world_size=world,
            num_workers=self.num_workers,
            collate_fn=SFTCollator(self.pad_id, self.pad_to_multiple_of),
        )

    def val_dataloader(self) -> FixedBatchLoader:
        """This rank's share of the validation examples, sorted by length (deterministic, little padding)."""
        assert self.val_dataset is not None, "call setup() first"
        rank, world = self._rank_and_world()
        batches = sorted_batches(self.val_dataset.lengths, self.batch_size)[rank::world]
        return FixedBatchLoader(self.val_dataset, batches, SFTCollator(self.pad_id, self.pad_to_multiple_of), self.num_workers)

    def test_dataloader(self) -> FixedBatchLoader:
        """``zhllama test`` scores the held-out examples: Alpaca data has no third split."""
        return self.val_dataloader()
