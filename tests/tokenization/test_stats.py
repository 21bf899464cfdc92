"""Statistics on 30 Wikipedia articles: what the Chinese vocabulary buys over the base, what the anchor wastes."""

from __future__ import annotations

import pytest
import sentencepiece as spm

from tokenization.stats import compare_stats


@pytest.fixture(scope="module")
def clean_vs_base(zh_tokenizer_dir, base_tokenizer_model, wiki_sample) -> dict:
    return compare_stats(zh_tokenizer_dir, [wiki_sample], base=base_tokenizer_model)


def test_the_base_spends_byte_tokens_on_chinese(clean_vs_base) -> None:
    base = clean_vs_base["base"]
    assert base["vocab_size"] == 32000 and base["documents"] == 30
    assert base["tokens_per_cjk_char"] > 1.2  # measured 1.27 (LLaMA: 1.62 on the 150 shared articles)
    assert 0.1 < base["byte_fallback_share"] < 0.15  # measured 0.124 (LLaMA: 0.43)
    assert base["unreachable_pieces"] == 0 and base["roundtrip_exact"] is True


def test_clean_merge_cuts_a_third_of_the_tokens(clean_vs_base) -> None:
    stats = clean_vs_base
    assert stats["cjk_chars"] > 150_000 and stats["chars"] > stats["cjk_chars"]
    assert stats["tokens_per_cjk_char"] < 0.85  # measured 0.817
    assert stats["byte_fallback_share"] < 0.05 and stats["unk_share"] == 0.0
    assert stats["unreachable_pieces"] == 0 and stats["roundtrip_exact"] is True
    assert stats["ratio"]["tokens"] < 0.67  # measured 0.645 (0.534 against LLaMA)


def test_counts_are_sentencepiece_ids_without_bos(clean_vs_base, zh_tokenizer_dir, base_tokenizer_model,
                                                   wiki_articles) -> None:
    chars = sum(map(len, wiki_articles))
    models = ((clean_vs_base, zh_tokenizer_dir / "tokenizer.model"), (clean_vs_base["base"], base_tokenizer_model))
    for stats, model in models:
        sp = spm.SentencePieceProcessor(model_file=str(model))
        ids = [i for document in sp.encode(wiki_articles) for i in document]
        assert (stats["chars"], stats["tokens"]) == (chars, len(ids))
        assert stats["tokens_per_char"] == pytest.approx(len(ids) / chars)
        assert stats["byte_fallback_share"] == pytest.approx(sum(map(sp.is_byte, ids)) / len(ids))
    assert clean_vs_base["ratio"]["tokens"] == pytest.approx(clean_vs_base["tokens"] / clean_vs_base["base"]["tokens"])


def test_anchor_leaves_unreachable_pieces(anchor_dir, wiki_sample) -> None:
    stats = compare_stats(anchor_dir, [wiki_sample], max_documents=5)
    assert stats["documents"] == 5
    assert stats["unreachable_pieces"] > 300  # measured 517 on the Mistral base (350 on LLaMA)
    assert "base" not in stats


def test_a_normalizing_model_without_byte_fallback_does_not_roundtrip(chinese_sp_model, wiki_sample) -> None:
    stats = compare_stats(chinese_sp_model, [wiki_sample], max_documents=10)
    assert stats["roundtrip_exact"] is False and stats["roundtrip_failures"] > 0
    assert stats["byte_fallback_share"] == 0.0
