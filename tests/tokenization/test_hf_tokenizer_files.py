"""The written Hugging Face directory loads offline and gives SentencePiece's ids."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
import sentencepiece as spm

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@functools.cache
def load(directory: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def sentencepiece(directory: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))


def mismatches(directory: Path, texts: list[str]) -> list[str]:
    tokenizer, sp = load(directory), sentencepiece(directory)
    hf_ids = tokenizer(texts)["input_ids"]
    sp_ids = [[sp.bos_id(), *ids] for ids in sp.encode(texts)]
    return [text for text, a, b in zip(texts, hf_ids, sp_ids) if a != b]


SPACES = (
    [" " * n for n in range(1, 40)]
    + [f"a{' ' * n}b" for n in range(1, 40)]
    + [f"{' ' * n}Hello world" for n in range(1, 20)]
    + [f"def f():\n{' ' * n}return {n}\n" for n in range(0, 34)]
    + ["\t\tx", "\n\n", " \n ", "trailing   ", "中文  空格　全角", "  中国 "]
)


def test_directory_loads_offline_with_the_right_special_tokens(zh_tokenizer_dir, zh_tokenizer_dir_with_pad) -> None:
    sp = sentencepiece(zh_tokenizer_dir)
    tokenizer = load(zh_tokenizer_dir)
    assert len(tokenizer) == sp.get_piece_size()
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (1, 2, 0)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == ("<s>", "</s>", "<unk>")
    assert tokenizer.pad_token is None
    assert tokenizer("你好")["input_ids"][0] == tokenizer.bos_token_id  # BOS added by default
    assert tokenizer("你好")["input_ids"][-1] != tokenizer.eos_token_id
    with_pad = load(zh_tokenizer_dir_with_pad)
    assert len(with_pad) == sentencepiece(zh_tokenizer_dir_with_pad).get_piece_size() == len(tokenizer) + 1
    assert with_pad.pad_token == "[PAD]" and with_pad.pad_token_id == len(tokenizer)
    config = json.loads((zh_tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is True and config["add_eos_token"] is False


def test_ids_equal_sentencepiece_on_every_wiki_article(zh_tokenizer_dir, wiki_articles) -> None:
    assert len(wiki_articles) == 30
    assert mismatches(zh_tokenizer_dir, wiki_articles) == []


def test_ids_equal_sentencepiece_on_english_prose_code_and_runs_of_spaces(
    zh_tokenizer_dir, english_prose, python_sources
) -> None:
    assert mismatches(zh_tokenizer_dir, english_prose) == []
    assert mismatches(zh_tokenizer_dir, python_sources) == []
    assert mismatches(zh_tokenizer_dir, SPACES) == []


@pytest.mark.parametrize(
    "base", ["base_tokenizer_model", pytest.param("llama_tokenizer_model", marks=pytest.mark.shared_data)]
)
def test_base_vocabularies_alone_match_sentencepiece_where_transformers_conversion_does_not(
    request, tmp_path, base, wiki_articles, python_sources
) -> None:
    from tokenization.hf_tokenizer_files import write_hf_tokenizer_files
    from tokenization.sentencepiece_proto import load_model_proto

    write_hf_tokenizer_files(load_model_proto(request.getfixturevalue(base)), tmp_path)
    assert mismatches(tmp_path, wiki_articles + python_sources + SPACES) == []


def test_decode_gives_the_text_back(zh_tokenizer_dir, wiki_articles) -> None:
    tokenizer = load(zh_tokenizer_dir)
    for text in wiki_articles[:20] + ["Hello  world, 你好！", "  leading spaces", "emoji 🦙 and \t tabs"]:
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_anchor_directory_loads_and_stays_consistent(anchor_dir) -> None:
    """The anchor's 17187 new pieces (on the Mistral base) tie at score 0: transformers breaks ties by merge rank,
    SentencePiece by position, so their ids differ on Chinese (see docs/tokenizer.md); English without digits
    still matches."""
    tokenizer = load(anchor_dir)
    assert len(tokenizer) == 32000 + 20000 - 2813  # 2813 of the Chinese model's pieces are already in the base
    assert mismatches(anchor_dir, ["Hello world, this is the anchor tokenizer.", "  indented code"]) == []


def test_tokenizer_test_vectors_through_transformers(zh_tokenizer_dir, base_tokenizer_model, vector_texts) -> None:
    tokenizer, sp = load(zh_tokenizer_dir), sentencepiece(zh_tokenizer_dir)
    base = spm.SentencePieceProcessor(model_file=str(base_tokenizer_model))
    for text in vector_texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == sp.encode(text), text
        if not any("\u4e00" <= c <= "\u9fff" for c in text):
            assert ids == base.encode(text), text


@pytest.mark.shared_data
def test_llama_test_vectors_through_transformers(llama_zh_tokenizer_dir, llama_vectors) -> None:
    """llama.cpp's expected ids: an oracle independent of SentencePiece for the merge on LLaMA's vocabulary."""
    tokenizer, sp = load(llama_zh_tokenizer_dir), sentencepiece(llama_zh_tokenizer_dir)
    for text, expected in llama_vectors:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == sp.encode(text), text
        if not any("\u4e00" <= c <= "\u9fff" for c in text):
            assert ids == expected, text


def test_merge_order_keeps_pieces_together_and_overlaps_left_first(anchor_dir, base_tokenizer_model) -> None:
    from tokenization.hf_tokenizer_files import bpe_merges, overlaps_left_first
    from tokenization.sentencepiece_proto import load_model_proto, piece_index

    # [ab][a][ba]: (ab, a) must come before (a, ba), whatever order they arrive in
    assert overlaps_left_first("aba", [("a", "ba"), ("ab", "a")]) == [("ab", "a"), ("a", "ba")]
    assert overlaps_left_first("abc", [("a", "bc"), ("ab", "c")]) == [("a", "bc"), ("ab", "c")]  # no overlap
    proto = load_model_proto(anchor_dir / "tokenizer.model")
    ranks: dict[str, list[int]] = {}
    for rank, (left, right) in enumerate(bpe_merges(proto)):
        ranks.setdefault(left + right, []).append(rank)
    space = "\u2581"
    # every piece's merges are contiguous, except the tie among the base's runs of spaces
    assert all(r[-1] - r[0] + 1 == len(r) for piece, r in ranks.items() if set(piece) != {space})
    # the anchor's 17187 score-0 pieces (a tie): shorter pieces first
    index = piece_index(proto)
    zero = sorted((r[0], p) for p, r in ranks.items() if proto.pieces[index[p]].score == 0.0)
    assert len(zero) > 10_000 and [len(p) for _, p in zero] == sorted(len(p) for _, p in zero)
    # the base's whitespace runs stay interleaved, longer left part first, as SentencePiece's tie-break needs
    runs = [left for left, right in bpe_merges(load_model_proto(base_tokenizer_model)) if set(left + right) == {space}]
    assert [len(left) for left in runs] == sorted((len(left) for left in runs), reverse=True)
