"""``val/bits_per_byte`` and ``val/bits_per_char`` during validation: the eval command's figure on the same text
(the SentencePiece dummy-prefix space is the one byte and character more the table charges), none without a
tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import tiny_llama_config
from lightning_modules.text_scoring import TextScorer

TEXT = "数学是研究数量、结构以及空间等概念的一门学科。Mathematics studies quantity and structure."


def validate(module: CausalLMModule, ids: list[int], tmp_path: Path) -> dict[str, float]:
    row = torch.tensor(ids)
    loader = DataLoader([{"input_ids": row, "labels": row.clone()}], batch_size=1)
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.validate(module, dataloaders=loader, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_validation_bits_per_byte_is_the_eval_figure(zh_tokenizer_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir)
    config = tiny_llama_config(vocab_size=32000, max_position_embeddings=128)
    module = CausalLMModule(model_config=config, tokenizer=str(zh_tokenizer_dir), init_seed=5)
    ids = [tokenizer.bos_token_id, *tokenizer(TEXT, add_special_tokens=False)["input_ids"]]
    metrics = validate(module, ids, tmp_path)
    [score] = TextScorer(module.causal_lm, tokenizer, window=128, stride=64).score([TEXT])
    nats = score.totals().nats
    assert metrics["val/loss"] == pytest.approx(nats / (len(ids) - 1), rel=1e-5)
    text_bytes, chars = len(TEXT.encode("utf-8")), len(TEXT)
    assert metrics["val/bits_per_byte"] == pytest.approx(nats / (math.log(2) * (text_bytes + 1)), rel=1e-5)
    assert metrics["val/bits_per_char"] == pytest.approx(nats / (math.log(2) * (chars + 1)), rel=1e-5)


def test_no_tokenizer_no_bits_per_byte(tmp_path: Path) -> None:
    module = CausalLMModule(model_config=tiny_llama_config(vocab_size=64, max_position_embeddings=32))
    metrics = validate(module, list(range(1, 20)), tmp_path)
    assert "val/loss" in metrics and "val/bits_per_byte" not in metrics and "val/bits_per_char" not in metrics
