"""The anchor's merge, reproduced byte for byte: Chinese-LLaMA-Alpaca's ``merge_tokenizers.py``.

It appends every piece of the added model whose text the base lacks, in the added model's order, as a NORMAL
piece with score 0 (and optionally a pad piece the same way). Kept exact so results can be compared with the
released Chinese-LLaMA / Chinese-Alpaca tokenizers; its known defects are what :mod:`merge_clean` fixes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenization.sentencepiece_proto import ModelProto, SentencePiece, copy_proto


@dataclass(frozen=True)
class AnchorMergeReport:
    base_pieces: int
    added_pieces: int
    already_present: int
    pad_added: bool
    total_pieces: int


def anchor_merge(base: ModelProto, add: ModelProto, pad_token: str | None = None) -> tuple[ModelProto, AnchorMergeReport]:
    merged = copy_proto(base)
    existing = {p.piece for p in merged.pieces}
    added = 0
    for piece in add.pieces:
        if piece.piece not in existing:
            merged.pieces.append(SentencePiece(piece=piece.piece, score=0))
            existing.add(piece.piece)
            added += 1
    pad_added = pad_token is not None and pad_token not in existing
    if pad_added:
        merged.pieces.append(SentencePiece(piece=pad_token, score=0))
    report = AnchorMergeReport(
        base_pieces=len(base.pieces),
        added_pieces=added,
        already_present=len(add.pieces) - added,
        pad_added=pad_added,
        total_pieces=len(merged.pieces),
    )
    return merged, report
