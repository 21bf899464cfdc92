"""Real texts for tokenizer tests: LLaMA's tokenizer test vectors, Wikipedia articles, English prose and code.

English prose and Python code come from the standard library of the running interpreter (docstrings and module
sources), so they exist on every machine without shipping a copy.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

STDLIB_MODULES = ("argparse", "json", "textwrap", "dataclasses", "pathlib", "logging", "subprocess", "inspect", "functools")


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


@pytest.fixture(scope="session")
def anchor_dir(llama_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenization.merge import merge_tokenizers

    out = tmp_path_factory.mktemp("anchor") / "tokenizer"
    merge_tokenizers(llama_tokenizer_model, chinese_sp_model, out, mode="anchor")
    return out
