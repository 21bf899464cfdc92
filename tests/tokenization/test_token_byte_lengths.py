"""The token -> bytes/characters table adds up to the text: exactly for byte-level BPE, plus the one dummy-prefix
space for SentencePiece-style tokenizers; special tokens stand for nothing, byte-fallback pieces for one byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.tokenization.byte_level_bases import TOY_SPECIAL, write_toy_base
from tokenization.token_byte_lengths import character_count, is_byte_level, token_byte_lengths

MIXED = ["数学是研究数量、结构以及空间等概念的一门学科。", "Hello,  world!\tTabs\nand 中文 mixed 𠀀 rare 🤗 emoji",
         "  leading spaces", "x"]


def sums(tokenizer, table, text: str) -> tuple[int, int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return sum(table.bytes[i] for i in ids), sum(table.chars[i] for i in ids)


def test_sentencepiece_table_adds_up_to_the_text_plus_the_dummy_prefix(
    zh_tokenizer_dir_with_pad: Path, vector_texts: list[str], wiki_articles: list[str]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir_with_pad)
    table = token_byte_lengths(tokenizer)
    assert not is_byte_level(tokenizer) and len(table.bytes) == len(tokenizer)
    for text in [*MIXED, *[t for t in vector_texts if t], wiki_articles[0][:2000]]:
        assert sums(tokenizer, table, text) == (len(text.encode("utf-8")) + 1, len(text) + 1), text


def test_sentencepiece_pieces(zh_tokenizer_dir_with_pad: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir_with_pad)
    table = token_byte_lengths(tokenizer)
    for special in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id):
        assert (table.bytes[special], table.chars[special]) == (0, 0)
    lead, continuation, space = tokenizer.convert_tokens_to_ids(["<0xE4>", "<0xB8>", "\u2581"])
    assert (table.bytes[lead], table.chars[lead]) == (1, 1)
    assert (table.bytes[continuation], table.chars[continuation]) == (1, 0)
    assert (table.bytes[space], table.chars[space]) == (1, 1)
    word = tokenizer.convert_tokens_to_ids("\u2581the")
    assert (table.bytes[word], table.chars[word]) == (4, 4)


def test_byte_level_table_adds_up_to_the_text_exactly(tmp_path: Path, english_prose: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(write_toy_base(tmp_path / "toy", english_prose[:200], vocab_size=400))
    table = token_byte_lengths(tokenizer)
    assert is_byte_level(tokenizer)
    special = tokenizer.convert_tokens_to_ids(TOY_SPECIAL)
    assert (table.bytes[special], table.chars[special]) == (0, 0)
    for text in [*MIXED, *english_prose[:20]]:
        assert sums(tokenizer, table, text) == (len(text.encode("utf-8")), len(text)), text


@pytest.mark.parametrize(("data", "chars"), [(b"", 0), (b"abc", 3), ("中".encode(), 1), ("中".encode()[1:], 0),
                                             ("🤗".encode()[:1], 1)])
def test_character_count_counts_lead_bytes(data: bytes, chars: int) -> None:
    assert character_count(data) == chars
