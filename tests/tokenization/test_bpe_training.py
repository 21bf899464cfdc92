"""``train --kind bpe``: BPE training that continues a byte-level base's own merges, on a toy base trained here."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from tokenization.bpe_training import FORMAT, ContinuedBpe, train_bpe_extension
from tokenization.byte_level_base import load_byte_level_base
from tokenization.byte_level_tokens import forces_cjk, token_bytes
from tokenization.cjk import CJK_RUN
from tokenization.errors import UserError


def test_incremental_pair_counts_equal_a_recount() -> None:
    rng = random.Random(0)
    words = [[rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    frequencies = [rng.randint(1, 5) for _ in words]
    bpe = ContinuedBpe({i: chr(0x4E00 + i) for i in range(1, 5)}, [list(w) for w in words], frequencies)
    for _ in range(40):
        bpe.merge(min(bpe.pair_counts, key=lambda pair: (-bpe.pair_counts[pair], pair)))
        recount: Counter[tuple[int, int]] = Counter()
        for word, frequency in zip(bpe.words, frequencies):
            for pair in zip(word, word[1:]):
                recount[pair] += frequency
        assert +bpe.pair_counts == recount


def test_merges_continue_the_base_bpe_on_cjk_pre_tokens_only(
    toy_base: Path, wiki5_corpus: Path, wiki_articles: list[str], tmp_path: Path
) -> None:
    report = train_bpe_extension(toy_base, [wiki5_corpus], tmp_path / "zh.json", num_merges=300)
    learned = json.loads((tmp_path / "zh.json").read_text(encoding="utf-8"))
    base = load_byte_level_base(toy_base)
    assert learned["format"] == FORMAT and learned["base_sha256"] == base.sha256
    assert report["learned_merges"] == len(learned["merges"]) == 300
    assert 0 < report["cjk_pre_tokens"] < report["pre_tokens"]

    vocab = base.tokenizer.get_vocab()
    known = set(vocab)
    for left, right in learned["merges"]:
        assert left in known and right in known  # built from base tokens or earlier new ones
        assert left + right not in vocab and forces_cjk(token_bytes(left + right))
        known.add(left + right)

    # The first merge is the most frequent allowed pair of the base's own segmentation of the CJK pre-tokens.
    pairs: Counter[tuple[str, str]] = Counter()
    for text in wiki_articles[:5]:
        for piece, (start, end) in base.tokenizer.pre_tokenizer.pre_tokenize_str(text):
            if CJK_RUN.search(text, start, end):
                tokens = [t.value for t in base.tokenizer.model.tokenize(piece)]
                pairs.update(zip(tokens, tokens[1:]))
    allowed = {p: c for p, c in pairs.items() if p[0] + p[1] not in vocab and forces_cjk(token_bytes(p[0] + p[1]))}
    assert pairs[tuple(learned["merges"][0])] == max(allowed.values())


def test_training_is_deterministic(toy_base: Path, wiki5_corpus: Path, tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        train_bpe_extension(toy_base, [wiki5_corpus], tmp_path / name, num_merges=100)
    merges = [json.loads((tmp_path / n).read_text(encoding="utf-8"))["merges"] for n in ("a.json", "b.json")]
    assert merges[0] == merges[1]


def test_stops_when_pairs_become_rare(toy_base: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("我们的中国。我们的中国。\n", encoding="utf-8")
    report = train_bpe_extension(toy_base, [corpus], tmp_path / "zh.json", num_merges=1000)
    assert report["stopped_below_min_frequency"] and 0 < report["learned_merges"] < 1000


def test_refuses_text_without_cjk_and_bad_bases(toy_base: Path, zh_tokenizer_dir: Path, tmp_path: Path) -> None:
    english = tmp_path / "english.txt"
    english.write_text("Only English here.\nAnd some code: x = 1\n", encoding="utf-8")
    with pytest.raises(UserError, match="english.txt: no CJK text found"):
        train_bpe_extension(toy_base, [english], tmp_path / "zh.json", num_merges=10)
    with pytest.raises(UserError, match="tokenizer.json: not a byte-level BPE tokenizer: it has no ByteLevel"):
        train_bpe_extension(zh_tokenizer_dir / "tokenizer.json", [english], tmp_path / "zh.json", num_merges=10)
    with pytest.raises(UserError, match="missing.json: base tokenizer not found"):
        train_bpe_extension(tmp_path / "missing.json", [english], tmp_path / "zh.json", num_merges=10)
    with pytest.raises(UserError, match="is a directory; name a file"):
        train_bpe_extension(toy_base, [english], tmp_path, num_merges=10)
    with pytest.raises(UserError, match="--vocab_size must be at least 1"):
        train_bpe_extension(toy_base, [english], tmp_path / "zh.json", num_merges=0)
    assert not (tmp_path / "zh.json").exists()
