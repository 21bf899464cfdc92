"""Sliding-window scoring: every token scored once with the context the windows promise, batching changes nothing,
and the totals are charged to the text (bytes, characters, the CJK split)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import AutoTokenizer

from lightning_modules.model_loading import build_causal_lm, tiny_llama_config
from lightning_modules.text_scoring import ScoreTotals, TextScorer, sliding_windows
from tokenization.errors import UserError

CHINESE = "数学是研究数量、结构以及空间等概念的一门学科，属于形式科学的一种。"
MIXED = "Python 3 的 json 模块：dumps() 把对象写成 JSON 字符串。"


@pytest.fixture(scope="module")
def tokenizer(zh_tokenizer_dir: Path):
    return AutoTokenizer.from_pretrained(zh_tokenizer_dir)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_causal_lm(None, tiny_llama_config(vocab_size=len(tokenizer), max_position_embeddings=128), 3).eval()


def reference_nats(model, prefix: int, ids: list[int], target: int, context_start: int) -> float:
    """Nats of ``ids[target]`` given the sequence ``[prefix, *ids]`` from ``context_start`` up to it."""
    sequence = [prefix, *ids]
    inputs = torch.tensor([sequence[context_start : target + 1]])
    with torch.no_grad():
        logits = model(inputs, logits_to_keep=1).logits[0, -1]
    return F.cross_entropy(logits[None], torch.tensor([ids[target]])).item()


@pytest.mark.parametrize("window", [2, 3, 8, 17])
def test_windows_score_every_position_once_with_the_promised_context(window: int) -> None:
    for stride in range(1, window):
        for length in range(2, 60):
            windows = sliding_windows(length, window, stride)
            scored = [t for w in windows for t in range(w.first_target, w.end)]
            assert scored == list(range(1, length))
            assert all(w.end - w.begin <= window for w in windows)
            assert all(w.first_target - w.begin >= window - stride for w in windows[1:])


@pytest.mark.parametrize(("window", "stride"), [(1, 1), (8, 0), (8, 8), (8, 9)])
def test_bad_window_settings_are_refused(window: int, stride: int) -> None:
    with pytest.raises(UserError, match="--window"):
        sliding_windows(10, window, stride)


def test_a_document_within_the_window_is_scored_with_full_context(model, tokenizer) -> None:
    [score] = TextScorer(model, tokenizer, window=128, stride=64).score([CHINESE])
    ids = [tokenizer.bos_token_id, *tokenizer(CHINESE, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    expected = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none").numpy()
    np.testing.assert_allclose(score.nats, expected, rtol=1e-5)


def test_long_documents_slide_and_each_token_sees_its_windows_context(model, tokenizer) -> None:
    window, stride = 12, 5
    text = CHINESE * 3
    [score] = TextScorer(model, tokenizer, window=window, stride=stride).score([text])
    prefix = tokenizer.bos_token_id
    for target in range(len(score.ids)):
        position = target + 1  # in [prefix, *ids]
        k = next(k for k in range(len(score.ids)) if min(k * stride + window, len(score.ids) + 1) > position)
        expected = reference_nats(model, prefix, score.ids, target, k * stride)
        assert score.nats[target] == pytest.approx(expected, rel=1e-4), target


def test_batching_and_padding_do_not_change_the_scores(model, tokenizer) -> None:
    texts = [CHINESE * 2, "短。", MIXED, CHINESE]
    alone = [s.nats for s in TextScorer(model, tokenizer, 16, 6, batch_windows=1).score(texts)]
    batched = list(TextScorer(model, tokenizer, 16, 6, batch_windows=5).score(texts))
    assert [s.text for s in batched] == texts
    for one, many in zip(alone, batched):
        np.testing.assert_allclose(many.nats, one, rtol=1e-5, atol=1e-6)


def test_totals_are_charged_to_the_text(model, tokenizer) -> None:
    scores = TextScorer(model, tokenizer, 64, 32).score([CHINESE, "plain English text.", MIXED])
    chinese, english, mixed = (score.totals() for score in scores)
    n = len(CHINESE)
    assert (chinese.chars, chinese.bytes, chinese.cjk_chars, chinese.cjk_bytes) == (n, 3 * n, n, 3 * n)
    assert chinese.cjk_nats == pytest.approx(chinese.nats) and chinese.cjk_tokens == pytest.approx(chinese.tokens)
    assert (english.cjk_chars, english.cjk_nats, english.cjk_tokens) == (0, 0.0, 0.0)
    cjk_count = sum(1 for c in MIXED if ord(c) > 0x2E80)
    assert mixed.cjk_chars == cjk_count and mixed.bytes == len(MIXED.encode("utf-8"))
    assert 0 < mixed.cjk_nats < mixed.nats and 0 < mixed.cjk_tokens < mixed.tokens


def test_summary_figures() -> None:
    totals = ScoreTotals(documents=2, chars=10, bytes=20, tokens=8.0, nats=16.0, cjk_chars=4, cjk_bytes=12,
                         cjk_tokens=2.0, cjk_nats=6.0)
    summary = totals.summary()
    assert summary["bits_per_char"] == pytest.approx(16 / (10 * math.log(2)))
    assert summary["bits_per_byte"] == pytest.approx(16 / (20 * math.log(2)))
    assert summary["tokens_per_char"] == pytest.approx(0.8)
    assert summary["token_perplexity"] == pytest.approx(math.exp(2.0))
    assert summary["cjk"]["bits_per_char"] == pytest.approx(6 / (4 * math.log(2)))
    assert summary["other"]["chars"] == 6 and summary["other"]["bits_per_byte"] == pytest.approx(10 / (8 * math.log(2)))
    assert ScoreTotals().summary()["cjk"]["bits_per_char"] is None
