"""DocumentEncoder gives exactly the ids of ``tokenizers`` on every real text, through SentencePiece for most.

Every tokenizer directory kind the pipeline writes (clean merge with and without pad, the anchor's merge, a plain
base; with the shared data also the released 49954-piece Chinese-Alpaca merge of LLaMA) against Chinese Wikipedia
articles and paragraphs, English prose, Python sources and awkward strings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.document_encoder import DocumentEncoder
from tests.conftest import read_jsonl_texts
from tokenization.hf_tokenizer_files import write_hf_tokenizer_files
from tokenization.sentencepiece_equivalent import build_equivalent
from tokenization.sentencepiece_proto import load_model_proto

AWKWARD = [
    "x",
    " leading space",
    "  two leading spaces",
    "trailing spaces   ",
    "tab\tand\nnewlines\r\n",
    "\nstarts with a newline",
    "\n\n\n",
    " \n leading space, then a newline",
    "ends with newlines\n\n",
    "nul\x00char",
    "全角\u3000空格",
    "emoji 🦙🦙 and 𠀀 (outside the BMP)",
    "zero\u200bwidth\ufeffmarks",
    "é composed, e\u0301 decomposed",
    "literal <s> and </s> and <unk> in text",
    "▁ already escaped ▁▁",
    " " * 200 + "after a long run",
    "000000000 1999 2000 999999 ……… ——— 哈哈哈哈哈哈",
    "是不是是不是是不是",
]


@pytest.fixture(scope="module")
def texts(paragraph_sample: Path, wiki_articles, english_prose, python_sources) -> dict[str, list[str]]:
    return {
        "wiki": wiki_articles,
        "cmrc": read_jsonl_texts(paragraph_sample),
        "english": english_prose,
        "code": python_sources,
        "awkward": AWKWARD,
    }


def joined(result: tuple[list[list[list[int]]], int]) -> tuple[list[list[int]], int]:
    runs, by_reference = result
    return [[i for run in doc for i in run] for doc in runs], by_reference


@pytest.fixture(scope="module")
def base_dir(base_tokenizer_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base_hf")
    write_hf_tokenizer_files(load_model_proto(base_tokenizer_model), out)
    return out


@pytest.fixture(scope="module")
def alpaca_anchor_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chinese-Alpaca's 49954 pieces: the anchor plus ``[PAD]`` as an ordinary piece."""
    out = tmp_path_factory.mktemp("alpaca_anchor")
    model = shared_data / "tokenizers" / "expected" / "chinese_alpaca_v1_49954.model"
    write_hf_tokenizer_files(load_model_proto(model), out)
    return out


@pytest.mark.parametrize(
    "directory",
    [
        "zh_tokenizer_dir",
        "zh_tokenizer_dir_with_pad",
        "anchor_dir",
        "base_dir",
        pytest.param("alpaca_anchor_dir", marks=pytest.mark.shared_data),
    ],
)
def test_same_ids_as_tokenizers_on_every_text(directory, request, texts) -> None:
    from transformers import AutoTokenizer

    backend = AutoTokenizer.from_pretrained(request.getfixturevalue(directory)).backend_tokenizer.to_str()
    reference = DocumentEncoder(backend, None)
    fast = DocumentEncoder(backend, build_equivalent(backend))
    for corpus, batch in texts.items():
        expected, all_reference = joined(reference.encode(batch))
        got, by_reference = joined(fast.encode(batch))
        assert all_reference == len(batch)
        assert got == expected, corpus
        if corpus in ("wiki", "cmrc"):
            # Chinese text goes through SentencePiece almost entirely (else the fast path quietly died)
            assert by_reference <= 0.05 * len(batch), (corpus, by_reference)
    _, by_reference = fast.encode(AWKWARD)
    assert by_reference >= 2  # the literal special tokens and the 200-space run at least
