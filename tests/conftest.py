"""Shared fixtures: the real data in ``../shared/data`` and tiny random-init LLaMA models.

The data location defaults to ``../shared/data`` beside the project root and can be moved with
``ZHLLAMA_SHARED_DATA``. Tests that need it are skipped, saying why, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "ZHLLAMA_SHARED_DATA"


def shared_data_dir() -> Path:
    return Path(os.environ.get(SHARED_DATA_ENV, PROJECT_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real test data; skips the test with the reason when it is not there."""
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared test data not found at {root}; set {SHARED_DATA_ENV} to its location")
    return root


@pytest.fixture(scope="session")
def llama_tokenizer_model(shared_data: Path) -> Path:
    return shared_data / "tokenizers" / "llama" / "tokenizer.model"


@pytest.fixture(scope="session")
def chinese_sp_model(shared_data: Path) -> Path:
    return shared_data / "tokenizers" / "chinese_sp.model"


@pytest.fixture(scope="session")
def wiki_sample(shared_data: Path) -> Path:
    return shared_data / "zhwiki" / "wiki_zh_sample.jsonl"


@pytest.fixture(scope="session")
def alpaca_dir(shared_data: Path) -> Path:
    return shared_data / "alpaca_zh"


@pytest.fixture(scope="session")
def zh_tokenizer_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face tokenizer directory with a Chinese-extended LLaMA vocabulary, for data and model tests.

    The clean merge of ``llama/tokenizer.model`` + ``chinese_sp.model`` (``zhllama tokenizer merge``), no pad token.
    """
    from tokenization.merge import merge_tokenizers

    out = tmp_path_factory.mktemp("zh_tokenizer") / "tokenizer"
    tokenizers = shared_data / "tokenizers"
    merge_tokenizers(tokenizers / "llama" / "tokenizer.model", tokenizers / "chinese_sp.model", out, mode="clean")
    return out


@pytest.fixture(scope="session")
def zh_tokenizer_dir_with_pad(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same clean merge with ``--pad-token "[PAD]"`` (a CONTROL piece appended after the Chinese pieces)."""
    from tokenization.merge import merge_tokenizers

    out = tmp_path_factory.mktemp("zh_tokenizer_pad") / "tokenizer"
    tokenizers = shared_data / "tokenizers"
    merge_tokenizers(
        tokenizers / "llama" / "tokenizer.model", tokenizers / "chinese_sp.model", out, mode="clean", pad_token="[PAD]"
    )
    return out
