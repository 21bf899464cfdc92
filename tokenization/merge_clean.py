"""The clean merge: add a Chinese vocabulary to a LLaMA-family BPE model, every added piece usable.

It

1. adds only pieces made of CJK ideographs and CJK punctuation, so digits keep LLaMA's digit splitting and
   text without CJK characters tokenizes exactly as with the base;
2. gives the added pieces distinct scores below every ordinary base piece, ordered by the added model's own
   scores, so that SentencePiece's BPE encoder (highest score first) and a ``tokenizers`` BPE built from the
   same scores agree, and base merges always win where they compete;
3. makes every added piece reachable: characters missing from the vocabulary are added as single-character
   pieces, and where the greedy merges get stuck short of a piece, the concatenation of the leftmost stuck
   pair is added as an intermediate piece (scored below everything else, so it only acts where the encoder
   would otherwise stop); pieces still unreachable after that are dropped.

Scores are float32 in the protobuf. The base's whitespace-run pieces sit at -1e9, where float32 steps are 64
wide, so new scores are placed just below the lowest *ordinary* base score instead, one unit apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tokenization.cjk import is_cjk_piece
from tokenization.errors import UserError
from tokenization.reachability import encode_own_text
from tokenization.sentencepiece_proto import (
    CONTROL,
    NORMAL,
    ModelProto,
    SentencePiece,
    copy_proto,
    model_type_name,
)

#: Base scores at or below this are SentencePiece's "merge last" sentinel (-1e9 on whitespace-run pieces).
SENTINEL_SCORE = -1e8
#: Rounds of adding intermediate pieces before giving up on a piece; each round shortens a stuck segmentation.
MAX_ROUNDS = 16


class MergeConflict(UserError, ValueError):
    """The models cannot be merged as asked (wrong base type, colliding pieces)."""


@dataclass
class CleanMergeReport:
    base_pieces: int
    add_pieces: int
    already_present: int
    skipped_not_cjk: int
    skipped_not_normal: int
    candidates: int
    added_pieces: int
    intermediate_pieces: int
    missing_chars_added: int
    dropped_unreachable: int
    pad_added: bool
    total_pieces: int
    score_range: tuple[float, float]
    dropped_examples: list[str] = field(default_factory=list)


def require_bpe_base(base: ModelProto, base_name: str) -> None:
    """Both merges append to a BPE vocabulary; reachability and merge order mean nothing for other types."""
    if base.trainer_spec.model_type != base.trainer_spec.BPE:
        raise MergeConflict(
            f"{base_name}: the base must be a LLaMA-family BPE SentencePiece model, this one is "
            f"{model_type_name(base)}; pass the tokenizer.model of the checkpoint you extend"
        )


def check_mergeable(base: ModelProto, add: ModelProto, base_name: str, add_name: str) -> None:
    """Refuses an add model whose ordinary pieces would take the text of a base control/unknown/byte piece."""
    special = {p.piece: p.type for p in base.pieces if p.type not in (NORMAL, SentencePiece.USER_DEFINED)}
    clashes = [p.piece for p in add.pieces if p.type in (NORMAL, SentencePiece.USER_DEFINED) and p.piece in special]
    if clashes:
        shown = ", ".join(repr(c) for c in clashes[:5])
        raise MergeConflict(
            f"{add_name}: {len(clashes)} ordinary piece(s) collide with control/byte pieces of {base_name} "
            f"({shown}); retrain the added model without them (e.g. --control_symbols or byte_fallback off) or "
            "remove them from its vocabulary"
        )


def lowest_ordinary_score(base: ModelProto) -> float:
    scores = [p.score for p in base.pieces if p.type == NORMAL and p.score > SENTINEL_SCORE]
    return min(scores) if scores else 0.0


@dataclass
class Selection:
    """The added model's pieces sorted into what the clean merge takes and what it skips."""

    candidates: list[str]  # in the added model's score order (Unigram log-probability or BPE merge order)
    already_present: int = 0
    not_cjk: int = 0
    not_normal: int = 0


def select_candidates(base: ModelProto, add: ModelProto) -> Selection:
    existing = {p.piece for p in base.pieces}
    selection = Selection(candidates=[])
    scored: list[tuple[float, int, str]] = []
    for rank, piece in enumerate(add.pieces):
        if piece.type != NORMAL:
            selection.not_normal += 1
        elif piece.piece in existing:
            selection.already_present += 1
        elif not is_cjk_piece(piece.piece):
            selection.not_cjk += 1
        else:
            scored.append((-piece.score, rank, piece.piece))
    selection.candidates = [text for *_, text in sorted(scored)]
    return selection


class DescendingScores:
    """Hands out distinct float32 scores, one unit apart, downwards from just below ``start``."""

    def __init__(self, start: float) -> None:
        self.last = np.float32(start)

    def next(self) -> float:
        lower = np.float32(self.last - np.float32(1.0))
        if lower == self.last:  # beyond 2**24 a unit step is lost in float32: take the next representable value
            lower = np.nextafter(self.last, np.float32(-np.inf))
        self.last = lower
        return float(lower)


def append_pieces(proto: ModelProto, texts: list[str], scores: DescendingScores) -> None:
    for text in texts:
        proto.pieces.append(SentencePiece(piece=text, score=scores.next(), type=NORMAL))


def add_intermediate_pieces(proto: ModelProto, ids: list[int], scores: DescendingScores) -> int:
    """Adds pieces until encoding each piece of ``ids`` yields itself (or MAX_ROUNDS pass); returns how many.

    Where the encoder gets stuck on a piece's own text, the leftmost adjacent pair of the stuck segmentation is
    added; being scored below everything, it merges only where the encoder would otherwise stop, so pieces that
    were reachable stay reachable.
    """
    added = 0
    pending = list(ids)
    for _ in range(MAX_ROUNDS):
        stuck = {i: out for i, out in encode_own_text(proto, pending).items() if out != [i]}
        texts = {p.piece for p in proto.pieces}
        new_texts: list[str] = []
        for out in stuck.values():
            if len(out) >= 2:
                pair = proto.pieces[out[0]].piece + proto.pieces[out[1]].piece
                if pair not in texts:
                    texts.add(pair)
                    new_texts.append(pair)
        if not new_texts:
            break
        first = len(proto.pieces)
        append_pieces(proto, new_texts, scores)
        added += len(new_texts)
        pending = list(stuck) + list(range(first, len(proto.pieces)))
    return added


def clean_merge(
    base: ModelProto,
    add: ModelProto,
    pad_token: str | None = None,
    base_name: str = "base model",
    add_name: str = "added model",
) -> tuple[ModelProto, CleanMergeReport]:
    require_bpe_base(base, base_name)
    check_mergeable(base, add, base_name, add_name)
    selection = select_candidates(base, add)
    in_vocab = {p.piece for p in base.pieces} | set(selection.candidates)
    if pad_token is not None and pad_token in in_vocab and pad_token not in controls(base):
        raise MergeConflict(
            f"{base_name}: pad token {pad_token!r} is an ordinary piece of the merged vocabulary, so text could "
            'produce it; choose another --pad_token (e.g. "[PAD]")'
        )
    # BPE merges start from characters that are pieces; a character neither vocabulary has becomes one.
    missing_chars = sorted({c for text in selection.candidates for c in text if c not in in_vocab})

    merged = copy_proto(base)
    scores = DescendingScores(lowest_ordinary_score(base))
    first_new = len(base.pieces)
    append_pieces(merged, missing_chars + selection.candidates, scores)
    candidate_ids = set(range(first_new + len(missing_chars), len(merged.pieces)))
    intermediates = add_intermediate_pieces(merged, list(range(first_new, len(merged.pieces))), scores)
    new_ids = range(first_new, len(merged.pieces))
    unreachable = {i for i, out in encode_own_text(merged, new_ids).items() if out != [i]}

    final = copy_proto(base)
    final.pieces.extend(merged.pieces[i] for i in new_ids if i not in unreachable)
    pad_added = add_pad_piece(final, pad_token) if pad_token is not None else False
    new_scores = [p.score for p in final.pieces[first_new:] if p.type == NORMAL]
    report = CleanMergeReport(
        base_pieces=len(base.pieces),
        add_pieces=len(add.pieces),
        already_present=selection.already_present,
        skipped_not_cjk=selection.not_cjk,
        skipped_not_normal=selection.not_normal,
        candidates=len(selection.candidates),
        added_pieces=len(candidate_ids - unreachable),
        intermediate_pieces=intermediates,
        missing_chars_added=len(missing_chars),
        dropped_unreachable=len(unreachable),
        pad_added=pad_added,
        total_pieces=len(final.pieces),
        score_range=(max(new_scores), min(new_scores)) if new_scores else (0.0, 0.0),
        dropped_examples=[merged.pieces[i].piece for i in sorted(unreachable)[:10]],
    )
    return final, report


def controls(proto: ModelProto) -> set[str]:
    return {p.piece for p in proto.pieces if p.type == CONTROL}


def add_pad_piece(proto: ModelProto, pad_token: str) -> bool:
    """Adds ``pad_token`` as a CONTROL piece (never produced from text) and registers it as the model's pad."""
    proto.trainer_spec.pad_piece = pad_token
    if pad_token in controls(proto):
        return False
    proto.pieces.append(SentencePiece(piece=pad_token, score=0.0, type=CONTROL))
    return True
