"""Shared fixtures: the real data in ``../shared/data`` and tiny random-init LLaMA models.

The data location defaults to ``../shared/data`` beside the project root and can be moved with
``ZHLLAMA_SHARED_DATA``. Tests that need it are skipped, saying why, where it is absent.

Texts for tokenizer tests: LLaMA's test vectors and Wikipedia articles from the shared data; English prose and
Python code from the standard library of the running interpreter (docstrings and module sources), so they
exist on every machine without shipping a copy.
"""

from __future__ import annotations

import inspect
import json
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


@pytest.fixture(scope="session")
def anchor_dir(llama_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The anchor's naive merge (``--mode anchor``): byte-identical to Chinese-LLaMA's 49953-piece tokenizer."""
    from tokenization.merge import merge_tokenizers

    out = tmp_path_factory.mktemp("anchor") / "tokenizer"
    merge_tokenizers(llama_tokenizer_model, chinese_sp_model, out, mode="anchor")
    return out


STDLIB_MODULES = (
    "argparse", "json", "textwrap", "dataclasses", "pathlib", "logging", "subprocess", "inspect", "functools"
)


@pytest.fixture(scope="session")
def llama_vectors(shared_data: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's 46 (input, ids) vectors for LLaMA's vocabulary: dummy prefix on, no BOS."""
    folder = shared_data / "tokenizers" / "llama"
    inputs = (folder / "vectors.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")[:-1]
    outputs = (folder / "vectors.out").read_text(encoding="utf-8").split("\n")[: len(inputs)]
    assert len(inputs) == 46
    return [(text, [int(i) for i in ids.split()]) for text, ids in zip(inputs, outputs)]


@pytest.fixture(scope="session")
def wiki_articles(wiki_sample: Path) -> list[str]:
    return [json.loads(line)["text"] for line in wiki_sample.read_text(encoding="utf-8").splitlines()]


def _modules():
    import importlib

    return [importlib.import_module(name) for name in STDLIB_MODULES]


@pytest.fixture(scope="session")
def english_prose() -> list[str]:
    """Paragraphs of the standard library's docstrings, one space between words."""
    paragraphs: list[str] = []
    for module in _modules():
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
            for block in (doc or "").split("\n\n"):
                text = " ".join(block.split())
                if len(text) > 40 and text[0].isalpha():
                    paragraphs.append(text)
    assert len(paragraphs) > 200
    return paragraphs


@pytest.fixture(scope="session")
def python_sources() -> list[str]:
    """Whole module sources: indentation, blank lines and runs of spaces."""
    return [Path(inspect.getsourcefile(module)).read_text(encoding="utf-8") for module in _modules()]
