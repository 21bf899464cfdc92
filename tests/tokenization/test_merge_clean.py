"""The clean merge's four properties, on the real Mistral and LLaMA vocabularies and the anchor's Chinese model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from tokenization.cjk import cjk_runs, is_cjk_piece
from tokenization.merge import merge_tokenizers
from tokenization.merge_clean import MergeConflict, clean_merge, lowest_ordinary_score
from tokenization.reachability import unreachable_piece_ids
from tokenization.sentencepiece_proto import CONTROL, NORMAL, load_model_proto, processor, write_model


@pytest.fixture(scope="module")
def clean(zh_tokenizer_dir: Path, base_tokenizer_model: Path):
    merged = load_model_proto(zh_tokenizer_dir / "tokenizer.model")
    base = load_model_proto(base_tokenizer_model)
    report = json.loads((zh_tokenizer_dir / "merge_report.json").read_text())
    return base, merged, report


def test_base_pieces_are_kept_unchanged_and_first(clean) -> None:
    base, merged, _ = clean
    assert list(merged.pieces)[: len(base.pieces)] == list(base.pieces)
    assert merged.trainer_spec == base.trainer_spec
    assert merged.normalizer_spec == base.normalizer_spec


def test_adds_only_cjk_pieces(clean) -> None:
    base, merged, report = clean
    added = [p.piece for p in merged.pieces[len(base.pieces) :]]
    assert len(added) > 15000
    assert all(is_cjk_piece(piece) for piece in added), [p for p in added if not is_cjk_piece(p)][:10]
    assert report["skipped_not_cjk"] > 900  # the anchor's digit, Latin and "▁中国" pieces


def test_every_added_piece_is_reachable_and_report_counts_the_help_it_needed(clean) -> None:
    base, merged, report = clean
    new_ids = range(len(base.pieces), len(merged.pieces))
    assert unreachable_piece_ids(merged, new_ids) == []
    assert unreachable_piece_ids(merged) == []
    assert report["intermediate_pieces"] > 0  # e.g. what 越来越 and 中华人民共和国 need
    assert report["added_pieces"] <= report["candidates"]
    new = report["missing_chars_added"] + report["candidates"] + report["intermediate_pieces"]
    assert len(merged.pieces) == 32000 + new - report["dropped_unreachable"] == report["total_pieces"]
    sp = processor(merged, add_dummy_prefix=False)
    for word in ("越来越", "中华人民共和国"):
        assert sp.encode(word, out_type=str) == [word]


def test_new_scores_are_distinct_float32_and_below_every_ordinary_base_score(clean) -> None:
    base, merged, _ = clean
    scores = np.array([p.score for p in merged.pieces[len(base.pieces) :]], dtype=np.float32)
    assert len(np.unique(scores)) == len(scores)
    assert scores.max() < lowest_ordinary_score(base)
    assert scores.min() > -1e9  # never in the whitespace pieces' -1e9 band


def test_non_chinese_test_vectors_tokenize_as_with_the_base(clean, vector_texts) -> None:
    base, merged, _ = clean
    non_chinese = [text for text in vector_texts if not cjk_runs(text)]
    assert len(non_chinese) == 44
    for text in non_chinese:
        assert processor(merged).encode(text) == processor(base).encode(text), text


def test_english_prose_and_code_tokenize_as_with_the_base(clean, english_prose, python_sources) -> None:
    base, merged, _ = clean
    texts = english_prose + python_sources + ["700 apples cost 1314151 yuan in 2024."]
    assert processor(merged).encode(texts) == processor(base).encode(texts)


def test_cjk_runs_cost_at_most_two_percent_more_than_the_anchor(clean, anchor_dir, wiki_articles) -> None:
    _, merged, _ = clean
    anchor = load_model_proto(anchor_dir / "tokenizer.model")
    runs = [run for article in wiki_articles for run in cjk_runs(article)]
    clean_tokens = sum(map(len, processor(merged, add_dummy_prefix=False).encode(runs)))
    anchor_tokens = sum(map(len, processor(anchor, add_dummy_prefix=False).encode(runs)))
    assert clean_tokens <= 1.02 * anchor_tokens, (clean_tokens, anchor_tokens)


@pytest.mark.shared_data
def test_works_for_the_llama_base_and_keeps_its_known_ids(llama_tokenizer_model, chinese_sp_model, llama_vectors,
                                                          tmp_path) -> None:
    report = merge_tokenizers(llama_tokenizer_model, chinese_sp_model, tmp_path / "out")
    merged = load_model_proto(tmp_path / "out" / "tokenizer.model")
    base = load_model_proto(llama_tokenizer_model)
    assert report["added_pieces"] > 15000 and report["unreachable_added_pieces"] == 0
    assert all(is_cjk_piece(p.piece) for p in merged.pieces[32000:])
    non_chinese = [(text, ids) for text, ids in llama_vectors if not cjk_runs(text)]
    assert len(non_chinese) == 44
    assert [processor(merged).encode(text) for text, _ in non_chinese] == [ids for _, ids in non_chinese]
    text = "LLaMA 7B was released in 2023.   def f(x):\n        return x"
    assert processor(merged).encode(text) == processor(base).encode(text)
    assert len(processor(merged).encode("中华人民共和国成立于1949年")) < len(processor(base).encode("中华人民共和国成立于1949年"))


def test_pad_token_is_a_control_piece_registered_as_pad(zh_tokenizer_dir_with_pad) -> None:
    sp = spm.SentencePieceProcessor(model_file=str(zh_tokenizer_dir_with_pad / "tokenizer.model"))
    assert sp.id_to_piece(sp.pad_id()) == "[PAD]"
    assert sp.pad_id() == sp.get_piece_size() - 1
    assert sp.is_control(sp.pad_id())
    assert sp.pad_id() not in sp.encode("[PAD] 填充")  # text never produces it


def test_add_pieces_colliding_with_byte_or_control_pieces_are_refused(
    base_tokenizer_model, chinese_sp_model, tmp_path
) -> None:
    add = load_model_proto(chinese_sp_model)
    normal = next(p for p in add.pieces if p.type == NORMAL)
    normal.piece = "<0x0A>"
    bad = tmp_path / "colliding.model"
    write_model(add, bad)
    with pytest.raises(MergeConflict, match=r"colliding\.model.*collide with control/byte pieces.*'<0x0A>'"):
        clean_merge(load_model_proto(base_tokenizer_model), load_model_proto(bad), add_name=str(bad))
    with pytest.raises(MergeConflict, match="collide"):
        merge_tokenizers(base_tokenizer_model, bad, tmp_path / "out", mode="anchor")
    assert not (tmp_path / "out").exists()


def test_pad_token_that_text_could_produce_is_refused(base_tokenizer_model, chinese_sp_model) -> None:
    with pytest.raises(MergeConflict, match="--pad_token"):
        clean_merge(load_model_proto(base_tokenizer_model), load_model_proto(chinese_sp_model), pad_token="中国")


def test_existing_control_pad_is_reused(base_tokenizer_model, chinese_sp_model) -> None:
    base = load_model_proto(base_tokenizer_model)
    merged, report = clean_merge(base, tiny_add_model(chinese_sp_model, ["中文"]), pad_token="</s>")
    assert not report.pad_added and merged.trainer_spec.pad_piece == "</s>"
    assert merged.pieces[2].type == CONTROL


def tiny_add_model(chinese_sp_model: Path, pieces: list[str]):
    """A copy of the Chinese model's settings holding only its special pieces and ``pieces``."""
    add = load_model_proto(chinese_sp_model)
    specials = [p for p in add.pieces if p.type != NORMAL]
    del add.pieces[:]
    add.pieces.extend(specials)
    for rank, text in enumerate(pieces):
        add.pieces.add(piece=text, score=-1.0 - rank, type=NORMAL)
    return add


def test_characters_missing_from_both_vocabularies_are_added_as_single_pieces(
    base_tokenizer_model, chinese_sp_model
) -> None:
    base = load_model_proto(base_tokenizer_model)
    assert not {"龘", "靐"} & {p.piece for p in base.pieces}
    merged, report = clean_merge(base, tiny_add_model(chinese_sp_model, ["龘靐", "2%。", "▁龘"]))
    assert report.missing_chars_added == 2 and report.added_pieces == 1 and report.skipped_not_cjk == 2
    assert [p.piece for p in merged.pieces[32000:]] == ["靐", "龘", "龘靐"]
    assert processor(merged, add_dummy_prefix=False).encode("龘靐", out_type=str) == ["龘靐"]


def test_pieces_left_unreachable_are_dropped_and_counted(base_tokenizer_model, chinese_sp_model, monkeypatch) -> None:
    import tokenization.merge_clean as merge_clean

    monkeypatch.setattr(merge_clean, "MAX_ROUNDS", 0)  # no intermediate pieces: what needs them must go
    merged, report = merge_clean.clean_merge(load_model_proto(base_tokenizer_model), load_model_proto(chinese_sp_model))
    assert report.intermediate_pieces == 0 and report.dropped_unreachable > 100
    assert report.added_pieces == report.candidates - report.dropped_unreachable
    assert unreachable_piece_ids(merged) == []
