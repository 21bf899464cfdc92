"""Statistics on the 150 Wikipedia articles: what the Chinese vocabulary buys, and what the anchor wastes."""

from __future__ import annotations

import pytest

from tokenization.stats import compare_stats


@pytest.fixture(scope="module")
def clean_vs_llama(zh_tokenizer_dir, llama_tokenizer_model, wiki_sample) -> dict:
    return compare_stats(zh_tokenizer_dir, [wiki_sample], base=llama_tokenizer_model)


def test_llama_spends_many_byte_tokens_on_chinese(clean_vs_llama) -> None:
    base = clean_vs_llama["base"]
    assert base["vocab_size"] == 32000 and base["documents"] == 150
    assert base["tokens_per_cjk_char"] > 1.5
    assert 0.35 < base["byte_fallback_share"] < 0.5
    assert base["unreachable_pieces"] == 0 and base["roundtrip_exact"] is True


def test_clean_merge_halves_the_tokens(clean_vs_llama) -> None:
    stats = clean_vs_llama
    assert stats["cjk_chars"] > 900_000 and stats["chars"] > stats["cjk_chars"]
    assert stats["tokens_per_cjk_char"] < 0.9
    assert stats["byte_fallback_share"] < 0.05 and stats["unk_share"] == 0.0
    assert stats["unreachable_pieces"] == 0 and stats["roundtrip_exact"] is True
    assert stats["ratio"]["tokens"] < 0.6
    assert stats["ratio"]["tokens"] == pytest.approx(stats["tokens"] / stats["base"]["tokens"])
    assert stats["tokens_per_char"] == pytest.approx(stats["tokens"] / stats["chars"])


def test_anchor_leaves_unreachable_pieces(anchor_dir, wiki_sample) -> None:
    stats = compare_stats(anchor_dir, [wiki_sample], max_documents=5)
    assert stats["documents"] == 5
    assert stats["unreachable_pieces"] > 300
    assert "base" not in stats


def test_a_normalizing_model_without_byte_fallback_does_not_roundtrip(chinese_sp_model, wiki_sample) -> None:
    stats = compare_stats(chinese_sp_model, [wiki_sample], max_documents=10)
    assert stats["roundtrip_exact"] is False and stats["roundtrip_failures"] > 0
    assert stats["byte_fallback_share"] == 0.0
