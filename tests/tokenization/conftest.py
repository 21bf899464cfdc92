"""Session-wide byte-level bases and corpora for the ``test_bpe_*`` tests: each is built once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tokenization.byte_level_bases import load_real_base, write_jsonl, write_toy_base
from tokenization.byte_level_base import ByteLevelBase


@pytest.fixture(scope="session")
def toy_base(english_prose: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2-style byte-level base with 800 tokens, trained on English prose (no CJK character)."""
    return write_toy_base(tmp_path_factory.mktemp("toy") / "base", english_prose)


@pytest.fixture(scope="session")
def wiki5_corpus(wiki_articles: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 5 Chinese Wikipedia articles of the committed sample: enough text for a few hundred merges."""
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "wiki5.jsonl", wiki_articles[:5])


@pytest.fixture(scope="session")
def smollm2_base() -> ByteLevelBase:
    """SmolLM2-135M's tokenizer, read from its GGUF (demo asset)."""
    return load_real_base("smollm2")


@pytest.fixture(scope="session")
def tekken_base() -> ByteLevelBase:
    """Mistral's Tekken 240911, converted from its tiktoken ranks (demo asset)."""
    return load_real_base("tekken")


@pytest.fixture(scope="session")
def qwen3_base() -> ByteLevelBase:
    """Qwen3's tokenizer.json (a Qwen2-style byte-level BPE with 26 added special tokens; demo asset)."""
    return load_real_base("qwen3")
