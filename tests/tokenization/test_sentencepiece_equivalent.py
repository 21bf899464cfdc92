"""The derived SentencePiece model gives ``tokenizer.json``'s ids wherever the proof clears a text.

Random small vocabularies make the hard cases common: a four-letter alphabet, pieces built from pieces,
scores with many ties, texts full of repeats. Every text the proof clears must encode identically in both
libraries; texts it does not clear are the ones data preparation sends to ``tokenizers``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from tokenization.hf_tokenizer_files import build_tokenizer
from tokenization.constants import SPACE_PIECE
from tokenization.sentencepiece_equivalent import (
    VERIFIED_RUN_LENGTH,
    NoEquivalent,
    SentencePieceEquivalent,
    build_equivalent,
)
from tokenization.sentencepiece_proto import load_model_proto

Piece = sp_pb2.ModelProto.SentencePiece


def random_bpe_proto(rng: random.Random, alphabet: list[str], merges: int, tie_share: float) -> sp_pb2.ModelProto:
    """A byte-fallback SentencePiece BPE model whose pieces are concatenations of earlier pieces."""
    proto = sp_pb2.ModelProto()
    for piece, kind in (("<unk>", Piece.UNKNOWN), ("<s>", Piece.CONTROL), ("</s>", Piece.CONTROL)):
        proto.pieces.add(piece=piece, type=kind)
    for byte in range(256):
        proto.pieces.add(piece=f"<0x{byte:02X}>", type=Piece.BYTE)
    pieces = list(alphabet)
    for char in alphabet:
        proto.pieces.add(piece=char, type=Piece.NORMAL)
    for i in range(merges):
        piece = rng.choice(pieces) + rng.choice(pieces)
        if piece in pieces or len(piece) > 6:
            continue
        pieces.append(piece)
        score = -float(rng.randint(1, 4)) if rng.random() < tie_share else -10.0 - i - rng.randint(0, merges)
        proto.pieces.add(piece=piece, score=score, type=Piece.NORMAL)
    trainer = proto.trainer_spec
    trainer.model_type = sp_pb2.TrainerSpec.BPE
    trainer.byte_fallback = True
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = 0, 1, 2, -1
    trainer.vocab_size = len(proto.pieces)
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = True
    normalizer.escape_whitespaces = True
    normalizer.remove_extra_whitespaces = False
    return proto


def cleared(equivalent: SentencePieceEquivalent, text: str) -> bool:
    pattern = equivalent.unsafe_pattern()
    return pattern is None or not pattern.search(equivalent.prefix + text.replace(" ", SPACE_PIECE))


def test_random_vocabularies_agree_on_every_cleared_text() -> None:
    rng = random.Random(20261130)
    checked = routed = 0
    for _ in range(60):
        alphabet = rng.sample(list("abcd") + [SPACE_PIECE], k=rng.randint(2, 5))
        proto = random_bpe_proto(rng, sorted(set(alphabet) | {SPACE_PIECE}), rng.randint(5, 50), rng.choice([0.0, 0.3, 0.8]))
        tokenizer = build_tokenizer(proto)
        equivalent = build_equivalent(tokenizer.to_str())
        sentencepiece = spm.SentencePieceProcessor(model_proto=equivalent.model_proto)
        texts = ["".join(rng.choice(alphabet + [" ", "x"]) for _ in range(rng.randint(1, 30))) for _ in range(150)]
        expected = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        for text, ids in zip(texts, expected):
            if cleared(equivalent, text):
                pieces = [p.piece for p in proto.pieces[259:]]
                assert sentencepiece.encode(equivalent.prefix + text) == ids, (text, pieces)
                checked += 1
            else:
                routed += 1
    assert checked > 0.9 * (checked + routed)  # the proof clears most texts, even these adversarial ones


def test_an_uncleared_text_really_can_differ() -> None:
    """A foreign ``tokenizer.json`` whose piece ``abc`` has its two merges apart, with ``cd``'s between:
    on ``abcd`` tokenizers merges ``c+d`` first, SentencePiece (scoring ``abc`` by its first merge) ``ab+c``.
    The proof must not clear that text."""
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import BPE

    specials = ["<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces = specials + [SPACE_PIECE, "a", "b", "c", "d", "ab", "bc", "cd", "abc"]
    merges = [("a", "b"), ("a", "bc"), ("c", "d"), ("ab", "c"), ("b", "c")]
    tokenizer = Tokenizer(BPE({p: i for i, p in enumerate(pieces)}, merges, unk_token="<unk>", byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE_PIECE), normalizers.Replace(" ", SPACE_PIECE)])
    equivalent = build_equivalent(tokenizer.to_str())
    sentencepiece = spm.SentencePieceProcessor(model_proto=equivalent.model_proto)
    assert tokenizer.encode("abcd").tokens == [SPACE_PIECE, "ab", "cd"]
    assert equivalent.prefix == SPACE_PIECE and equivalent.boundary == "\n"
    assert sentencepiece.encode(SPACE_PIECE + "abcd", out_type=str) == [SPACE_PIECE, "abc", "d"]
    assert not cleared(equivalent, "abcd") and not cleared(equivalent, "xxabcdxx")
    for text in ("ab", "bc", "dcba", "bab"):
        assert cleared(equivalent, text)
        assert sentencepiece.encode(SPACE_PIECE + text) == tokenizer.encode(text).ids


@pytest.fixture(scope="module")
def base_equivalent(base_tokenizer_model: Path) -> SentencePieceEquivalent:
    return build_equivalent(build_tokenizer(load_model_proto(base_tokenizer_model)).to_str())


def test_base_whitespace_runs_are_verified_up_to_the_limit(base_equivalent) -> None:
    runs = [s for s in base_equivalent.unsafe_substrings if set(s) == {SPACE_PIECE}]
    assert runs == [SPACE_PIECE * (VERIFIED_RUN_LENGTH + 1)]
    assert base_equivalent.proven_pieces > 28_000 and base_equivalent.unsafe_pieces < 300


def test_added_tokens_send_their_texts_to_tokenizers(base_equivalent) -> None:
    for token in ("<s>", "</s>", "<unk>"):
        assert token in base_equivalent.unsafe_substrings
        assert not cleared(base_equivalent, f"正文 {token} 正文")


def _with(config: dict, **changes) -> str:
    return json.dumps({**config, **changes})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: {"pre_tokenizer": {"type": "Metaspace", "replacement": SPACE_PIECE, "prepend_scheme": "first"}},
         "pre-tokenizer"),
        (lambda c: {"normalizer": {"type": "Lowercase"}}, "normalizer"),
        (lambda c: {"model": {**c["model"], "byte_fallback": False}}, "byte-fallback"),
        (lambda c: {"model": {**c["model"], "dropout": 0.1}}, "dropout"),
        (lambda c: {"model": {**c["model"], "vocab": {k: v for k, v in c["model"]["vocab"].items() if k != "<0x41>"}}},
         "ids are not 0..n-1"),
        (lambda c: {"added_tokens": [{**t, "normalized": True} for t in c["added_tokens"]]}, "after normalization"),
    ],
)
def test_pipelines_without_a_sentencepiece_counterpart_are_refused(base_tokenizer_model, change, reason) -> None:
    config = json.loads(build_tokenizer(load_model_proto(base_tokenizer_model)).to_str())
    with pytest.raises(NoEquivalent, match=reason):
        build_equivalent(_with(config, **change(config)))


def test_unsafe_pattern_finds_every_substring_even_when_one_extends_another() -> None:
    equivalent = SentencePieceEquivalent(b"", "", None, ("<s>", "<s>x", "ab", "abc", "b"), 0, 0)
    pattern = equivalent.unsafe_pattern()
    for text, unsafe in (("<s>", True), ("zz<s>", True), ("<s>x", True), ("xab", True), ("xbx", True), ("ac", False)):
        assert bool(pattern.search(text)) is unsafe, text
