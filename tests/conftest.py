"""Shared fixtures: committed real assets, the larger shared data, and Chinese-extended tokenizer folders.

Most tests read the small openly licensed files committed under ``tests/assets/`` (see its README: the
Mistral-7B v0.1 tokenizer as the LLaMA-family base, Chinese-LLaMA-Alpaca's Chinese SentencePiece model, slices of
Chinese Wikipedia and of the Alpaca demo set), so they run on a fresh clone. Tests that need files which may not be
committed (LLaMA's own tokenizer and the merges made from it, People's Daily, BELLE, the full corpora) are marked
``shared_data`` and read ``../shared/data`` beside the project root, or ``ZHLLAMA_SHARED_DATA``. Where that folder
is absent they are skipped, saying why; under ``CI=true`` they fail instead, so CI cannot pass without them.

English prose and Python code come from the standard library of the running interpreter (docstrings and module
sources), so they exist on every machine without shipping a copy.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"
SHARED_DATA_ENV = "ZHLLAMA_SHARED_DATA"
SHARED_DATA_MARK = "shared_data"


def shared_data_dir() -> Path:
    return Path(os.environ.get(SHARED_DATA_ENV, PROJECT_ROOT.parent / "shared" / "data")).resolve()


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require_shared_data() -> Path:
    """The shared data root; where it is absent, skips the test with the reason (fails it under ``CI=true``)."""
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        reason = f"shared test data not found at {root}; set {SHARED_DATA_ENV} to its location"
        if on_ci():
            pytest.fail(f"{reason} (CI=true: a missing asset is a failure)", pytrace=False)
        pytest.skip(reason)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that reaches ``shared_data`` carries the mark, so ``-m "not shared_data"`` is what runs anywhere."""
    unmarked = [
        item.nodeid for item in items
        if "shared_data" in getattr(item, "fixturenames", ()) and item.get_closest_marker(SHARED_DATA_MARK) is None
    ]
    if unmarked:
        raise pytest.UsageError(f"tests using the shared_data fixture need @pytest.mark.{SHARED_DATA_MARK}: {unmarked}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(SHARED_DATA_MARK) is not None:
        require_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real test data (``../shared/data``); only for tests marked ``shared_data``."""
    return require_shared_data()


@pytest.fixture(scope="session")
def base_tokenizer_model() -> Path:
    """Mistral-7B v0.1's SentencePiece model: a LLaMA-family base (32000 pieces, BPE, byte fallback)."""
    return ASSETS / "tokenizers" / "mistral_v1" / "tokenizer.model"


@pytest.fixture(scope="session")
def chinese_sp_model() -> Path:
    """Chinese-LLaMA-Alpaca's Chinese SentencePiece model: Unigram, 20000 pieces, nmt_nfkc, no byte fallback."""
    return ASSETS / "tokenizers" / "chinese_sp.model"


@pytest.fixture(scope="session")
def wiki_sample() -> Path:
    """30 full Chinese Wikipedia articles in the brightmart ``wiki_zh`` layout (``{"id","url","title","text"}``)."""
    return ASSETS / "zhwiki" / "wiki_zh_sample_first30.jsonl"


@pytest.fixture(scope="session")
def paragraph_sample() -> Path:
    """200 Chinese Wikipedia paragraphs (CMRC 2018 dev set) in the same layout: short documents."""
    return ASSETS / "zhwiki" / "cmrc2018_paragraphs_first200.jsonl"


@pytest.fixture(scope="session")
def alpaca_sample() -> Path:
    """200 Chinese Alpaca records, a JSON array of ``{"instruction","input","output"}``."""
    return ASSETS / "alpaca_zh" / "alpaca_zh_demo_first200.json"


@pytest.fixture(scope="session")
def llama_tokenizer_model(shared_data: Path) -> Path:
    """The original LLaMA tokenizer (Meta licence: shared data only)."""
    return shared_data / "tokenizers" / "llama" / "tokenizer.model"


def _merge(base: Path, add: Path, out: Path, mode: str, pad_token: str | None = None) -> Path:
    from tokenization.merge import merge_tokenizers

    merge_tokenizers(base, add, out, mode=mode, pad_token=pad_token)
    return out


@pytest.fixture(scope="session")
def zh_tokenizer_dir(
    base_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A Hugging Face tokenizer directory with a Chinese-extended vocabulary, for data and model tests.

    The clean merge of the Mistral base + ``chinese_sp.model`` (``zhllama tokenizer merge``), no pad token.
    """
    out = tmp_path_factory.mktemp("zh_tokenizer") / "tokenizer"
    return _merge(base_tokenizer_model, chinese_sp_model, out, "clean")


@pytest.fixture(scope="session")
def zh_tokenizer_dir_with_pad(
    base_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The same clean merge with ``--pad_token "[PAD]"`` (a CONTROL piece appended after the Chinese pieces)."""
    out = tmp_path_factory.mktemp("zh_tokenizer_pad") / "tokenizer"
    return _merge(base_tokenizer_model, chinese_sp_model, out, "clean", pad_token="[PAD]")


@pytest.fixture(scope="session")
def anchor_dir(base_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The anchor's naive merge (``--mode anchor``) on the Mistral base: every new piece appended with score 0."""
    return _merge(base_tokenizer_model, chinese_sp_model, tmp_path_factory.mktemp("anchor") / "tokenizer", "anchor")


@pytest.fixture(scope="session")
def llama_zh_tokenizer_dir(
    llama_tokenizer_model: Path, chinese_sp_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The clean merge on LLaMA's own vocabulary (shared data only), for checks against LLaMA's known ids."""
    return _merge(llama_tokenizer_model, chinese_sp_model, tmp_path_factory.mktemp("llama_zh") / "tokenizer", "clean")


STDLIB_MODULES = (
    "argparse", "json", "textwrap", "dataclasses", "pathlib", "logging", "subprocess", "inspect", "functools"
)


def _vector_inputs(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")[:-1]


@pytest.fixture(scope="session")
def vector_texts() -> list[str]:
    """The 46 inputs of llama.cpp's tokenizer test vectors: spaces, digits, code, emoji, two Chinese lines."""
    texts = _vector_inputs(ASSETS / "tokenizers" / "llama" / "vectors.inp")
    assert len(texts) == 46
    return texts


@pytest.fixture(scope="session")
def llama_vectors(shared_data: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's 46 (input, ids) vectors for LLaMA's vocabulary: dummy prefix on, no BOS."""
    folder = shared_data / "tokenizers" / "llama"
    inputs = _vector_inputs(folder / "vectors.inp")
    outputs = (folder / "vectors.out").read_text(encoding="utf-8").split("\n")[: len(inputs)]
    assert len(inputs) == 46
    return [(text, [int(i) for i in ids.split()]) for text, ids in zip(inputs, outputs)]


def read_jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def wiki_articles(wiki_sample: Path) -> list[str]:
    return read_jsonl_texts(wiki_sample)


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
