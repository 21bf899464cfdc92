"""``subtoken_ids``: a new token's base pieces spell exactly its bytes, for byte-level and SentencePiece extensions."""

from __future__ import annotations

from pathlib import Path

from tokenization.bpe_merge import merge_bpe_extension
from tokenization.bpe_training import train_bpe_extension
from tokenization.hf_tokenizer_files import write_hf_tokenizer_files
from tokenization.pretrained_tokenizer import load_tokenizer
from tokenization.sentencepiece_proto import load_model_proto
from tokenization.subtoken_ids import subtoken_ids
from tokenization.token_byte_lengths import token_texts


def assert_spelled_by_base(base_dir: Path, extended_dir: Path) -> list[list[int]]:
    base, extended = load_tokenizer(base_dir), load_tokenizer(extended_dir)
    first = len(base)
    splits = subtoken_ids(base, extended, first)
    base_texts, extended_texts = token_texts(base), token_texts(extended)
    assert len(splits) == len(extended) - first > 100
    for token_id, ids in zip(range(first, len(extended)), splits):
        assert ids and all(i < first for i in ids), (token_id, ids)
        assert b"".join(base_texts[i] for i in ids) == extended_texts[token_id], token_id
    return splits


def test_byte_level_extension_splits_into_base_tokens(toy_base: Path, wiki5_corpus: Path, tmp_path: Path) -> None:
    learned = tmp_path / "learned.json"
    train_bpe_extension(toy_base, [wiki5_corpus], learned, num_merges=300)
    merge_bpe_extension(toy_base, learned, tmp_path / "extended")
    splits = assert_spelled_by_base(toy_base, tmp_path / "extended")
    assert min(len(ids) for ids in splits) >= 2  # every new token is a merge: the base spells it with more pieces


def test_sentencepiece_merge_splits_with_byte_fallback(
    base_tokenizer_model: Path, zh_tokenizer_dir: Path, tmp_path: Path
) -> None:
    write_hf_tokenizer_files(load_model_proto(base_tokenizer_model), tmp_path / "base")
    splits = assert_spelled_by_base(tmp_path / "base", zh_tokenizer_dir)
    pieces = load_tokenizer(tmp_path / "base").convert_ids_to_tokens(sorted({i for ids in splits for i in ids}))
    assert any(piece.startswith("<0x") for piece in pieces)  # characters Mistral has no piece for: byte fallback
