"""Which pieces of a BPE vocabulary can ever come out of the encoder.

SentencePiece's BPE encoder starts from single characters and repeatedly merges the adjacent pair whose
concatenation is a piece with the highest score (ties: leftmost). A piece is *reachable* when encoding its own
text (dummy prefix off) yields exactly that piece; if even its own text cannot build it, no text can, because
inside any longer text the same characters see the same merges or lose some of them to a neighbour. Pieces that
fail this test are embedding rows no token ever uses.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenization.constants import SPACE_PIECE
from tokenization.sentencepiece_proto import NORMAL, ModelProto, copy_proto, processor


def piece_text(piece: str) -> str:
    """The input text whose normalization is ``piece`` (SentencePiece escapes spaces as U+2581)."""
    return piece.replace(SPACE_PIECE, " ")


def encode_own_text(proto: ModelProto, ids: Iterable[int]) -> dict[int, list[int]]:
    """Encodes each piece's own text with the dummy prefix off; maps piece id -> the ids produced."""
    ids = list(ids)
    if proto.normalizer_spec.remove_extra_whitespaces:  # it would strip the leading space of every '▁x' piece
        proto = copy_proto(proto)
        proto.normalizer_spec.remove_extra_whitespaces = False
    sp = processor(proto, add_dummy_prefix=False)
    encoded = sp.encode([piece_text(proto.pieces[i].piece) for i in ids], out_type=int)
    return dict(zip(ids, encoded))


def unreachable_piece_ids(proto: ModelProto, ids: Iterable[int] | None = None) -> list[int]:
    """Ids of NORMAL pieces (all, or those in ``ids``) that encoding their own text does not produce."""
    if proto.trainer_spec.model_type != proto.trainer_spec.BPE:
        return []  # Unigram/word/char models can emit any piece directly; reachability is a BPE question
    candidates = range(len(proto.pieces)) if ids is None else ids
    ids = [i for i in candidates if proto.pieces[i].type == NORMAL]
    encoded = encode_own_text(proto, ids)
    return [i for i, out in encoded.items() if out != [i]]
