"""The inputs of the distributed runs, and the one-process stage 1 run every strategy is compared with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.tiny_fit import TINY, small_corpus, tiny_fit_args
from tests.distributed.launch import EMBEDDING_ONLY, LORA, callbacks_config, csv_logger, fit


@pytest.fixture(scope="session")
def inputs(zh_tokenizer_dir: Path, wiki_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("distributed")
    return {"tokenizer": zh_tokenizer_dir, "corpus": small_corpus(wiki_sample, folder / "inputs"),
            "cache": folder / "cache", "folder": folder}


@pytest.fixture(scope="session")
def stage1_args(inputs: dict[str, Path]) -> list[str]:
    """Stage 1 on the tiny model, training the embedding and the head, new rows only, saving every step. The
    weight decay is large enough that a step that skips the new rows' decay misses by far more than the
    tolerance (the new rows start near zero, at the old rows' mean)."""
    policy = callbacks_config(inputs["folder"], EMBEDDING_ONLY, new_rows_only=True, include_lm_head=True)
    return [*tiny_fit_args("pt_embed.yaml", inputs["tokenizer"], inputs["corpus"], inputs["cache"]),
            "--model.model_config", TINY, "--model.weight_decay", "10.0", "--config", str(policy)]


@pytest.fixture(scope="session")
def stage1_single(inputs: dict[str, Path], stage1_args: list[str]) -> Path:
    """Stage 1 in one process with batch 2, two steps: what 2 ranks with batch 1 must reproduce."""
    root = inputs["folder"] / "stage1_single"
    return fit(root, *stage1_args, strategy="auto", devices=1, batch_size=2, max_steps=2, logger=csv_logger(root))


@pytest.fixture(scope="session")
def stage2_args(inputs: dict[str, Path], stage1_single: Path) -> list[str]:
    """Stage 2 (LoRA r 4 + embedding + head) from the one-process stage 1 run."""
    policy = callbacks_config(inputs["folder"], LORA, r=4, alpha=8, dropout=0.0)
    return [*tiny_fit_args("pt_lora.yaml", inputs["tokenizer"], inputs["corpus"], inputs["cache"]),
            "--model.init_from", str(stage1_single), "--config", str(policy)]


@pytest.fixture(scope="session")
def stage2_single(inputs: dict[str, Path], stage2_args: list[str]) -> Path:
    """One step of stage 2 in one process with batch 2."""
    return fit(inputs["folder"] / "stage2_single", *stage2_args, strategy="auto", devices=1, batch_size=2)
