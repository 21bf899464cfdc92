"""A SentencePiece model that provably encodes like a ``tokenizer.json`` BPE, and where that proof stops.

Why: on Chinese text SentencePiece's C++ BPE encoder is about twice as fast as the ``tokenizers`` one, and
tokenization is nearly all of data preparation. But every stage must see the ids of the Hugging Face
directory, so SentencePiece may only be used where it gives those ids exactly. This module builds a
SentencePiece model from the ``tokenizer.json`` (same pieces, same ids) and proves, piece by piece, where its
encoder and the ``tokenizers`` encoder cannot differ. A document that contains a piece the proof does not
cover (an *unsafe substring*) is encoded by ``tokenizers`` instead; everything else by SentencePiece.

The two encoders run the same greedy algorithm -- repeatedly merge the best adjacent pair of symbols -- and
differ in what "best" means: ``tokenizers`` ranks each merge *pair* (its line in ``merges``), SentencePiece
ranks the merged *piece* (its score) and takes the leftmost among equals. The derived model scores each piece
by the rank of its first merge, so the two orders agree whenever the competing candidates make different
pieces (provided each piece's merges are contiguous in ``merges``). They can disagree only between two
candidates that make the *same* piece ``P`` through *different* pairs. For such a multi-pair piece the
proof needs:

- **overlaps**: where two such candidates share a symbol (``[a][b][c]`` with ``a+b = b+c = P``) the left
  pair must come first in ``merges``, so that ``tokenizers`` also resolves the overlap leftmost. Merges whose
  symbols can never be neighbours are left out of all this: a lone character ``x`` is never directly left of
  a run ``xx...`` when ``xx`` ranks before ``xxx`` and ``xxxx`` (the ``x+x`` merges then all happen first and
  pair every run up from its left end);
- **independence**: merging a candidate may trigger merges ranked before ``P`` (a *cascade* growing the new
  symbol); these must never consume a part of ``P``, a grown symbol, or a symbol that a cascade from the
  other side could also take. Then the remaining candidates of ``P`` and all cascades touch disjoint symbols,
  and the order in which the two encoders process them does not change the result.

Runs of one repeated character (LLaMA's ``▁▁`` ... ``▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁``, all tied at the lowest score) are
ordered pair by pair in ``merges`` to reproduce SentencePiece's leftmost tie-breaking, which no per-piece score
can express. When they merge after everything else and no other piece contains two of that character, every
run evolves on its own, so the derived model keeps them tied (SentencePiece's own rule) and both encoders are
simulated on every run length up to :data:`VERIFIED_RUN_LENGTH`; longer runs are unsafe substrings.

Everything else that could differ (normalizers, pre-tokenizers, added tokens, byte fallback, unreachable
pieces) is either matched exactly, turned into unsafe substrings, or makes :func:`build_equivalent` refuse.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import defaultdict
from dataclasses import dataclass

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from tokenization.constants import SPACE_PIECE

#: Runs of one character are verified up to this length; a longer run sends its document to ``tokenizers``.
VERIFIED_RUN_LENGTH = 64
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")
_PieceType = sp_pb2.ModelProto.SentencePiece


class NoEquivalent(ValueError):
    """The tokenizer is outside what the derived SentencePiece model can reproduce; the reason says why."""


@dataclass(frozen=True)
class SentencePieceEquivalent:
    """A serialized SentencePiece model plus the substrings that send a document to ``tokenizers``."""

    model_proto: bytes  # encodes ``prefix + text``; it adds no dummy prefix itself
    prefix: str  # "▁" when the tokenizer's normalizer prepends it, else ""
    boundary: str | None  # a character no merge touches ("\n" when so): texts may be cut there, parts encoded alone
    unsafe_substrings: tuple[str, ...]  # matched against ``prefix + text`` with spaces as ▁
    proven_pieces: int
    unsafe_pieces: int

    def unsafe_pattern(self) -> re.Pattern[str] | None:
        """A regex finding any unsafe substring, shaped as a trie (2.5x faster than a flat alternation)."""
        if not self.unsafe_substrings:
            return None
        trie: dict = {}
        for text in self.unsafe_substrings:
            node = trie
            for char in text:
                node = node.setdefault(char, {})
            node[""] = {}  # a text ends here

        def pattern(node: dict) -> str:
            if "" in node:  # a match can stop here: whatever follows, a whole unsafe substring was seen
                return ""
            branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items())]
            return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"

        return re.compile(pattern(trie))


@dataclass
class _Bpe:
    """The parts of a ``tokenizer.json`` BPE model the proof reasons about."""

    vocab: dict[str, int]
    pairs: list[tuple[str, str]]  # merges in rank order
    ranks: dict[str, list[int]]  # merged piece -> ranks of its merges, ascending
    first: dict[str, int]  # merged piece -> rank of its first merge (the derived model's priority)
    uses: dict[str, list[tuple[str, str, str]]]  # piece -> (side it sits on, partner, merged piece)


def _check_pipeline(config: dict) -> bool:
    """Refuses every setting under which the encoders' inputs or symbols could differ; returns add_dummy_prefix."""
    if config.get("pre_tokenizer") is not None:
        raise NoEquivalent("the tokenizer has a pre-tokenizer; SentencePiece merges across the whole text")
    normalizer = config.get("normalizer") or {}
    steps = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": SPACE_PIECE}
    if steps == [{"type": "Prepend", "prepend": SPACE_PIECE}, replace]:
        prefix = True
    elif steps == [replace]:
        prefix = False
    else:
        raise NoEquivalent(f"normalizer {json.dumps(normalizer)} is not SentencePiece's identity + whitespace escaping")
    model = config.get("model") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        raise NoEquivalent("the model is not a byte-fallback BPE")
    if model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise NoEquivalent("BPE dropout or sub-word affixes have no SentencePiece counterpart")
    if model.get("ignore_merges"):
        raise NoEquivalent("ignore_merges looks words up whole; SentencePiece always merges")
    vocab = model.get("vocab") or {}
    if model.get("unk_token") not in vocab:
        raise NoEquivalent("the BPE model has no unknown token in its vocabulary")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise NoEquivalent("vocabulary ids are not 0..n-1")
    missing = [f"<0x{b:02X}>" for b in range(256) if f"<0x{b:02X}>" not in vocab]
    if missing:
        raise NoEquivalent(f"byte fallback lacks {len(missing)} byte pieces (e.g. {missing[0]})")
    for token in config.get("added_tokens", []):
        if token.get("normalized"):
            raise NoEquivalent(f"added token {token['content']!r} is matched after normalization")
    return prefix


def _parse(model: dict) -> _Bpe:
    pairs = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    ranks: dict[str, list[int]] = defaultdict(list)
    uses: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for rank, (left, right) in enumerate(pairs):
        merged = left + right
        ranks[merged].append(rank)
        uses[left].append(("left", right, merged))
        uses[right].append(("right", left, merged))
    return _Bpe(model["vocab"], pairs, dict(ranks), {p: r[0] for p, r in ranks.items()}, dict(uses))


def _run_family(bpe: _Bpe, merged: set[str]) -> tuple[str, set[str]] | None:
    """The trailing family of runs of one character (LLaMA's spaces), if the run argument applies to it.

    It applies when the family's merges come after every other merge and no other piece holds two of the
    character in a row: then, once the family's turn comes, each run of the character is on its own.
    """
    if not bpe.pairs:
        return None
    last = bpe.pairs[-1][0] + bpe.pairs[-1][1]
    char = last[0]
    if set(last) != {char}:
        return None
    family = {p for p in merged if set(p) == {char}}
    start = min(r for p in family for r in bpe.ranks[p])
    if any(bpe.ranks[p][-1] >= start for p in merged - family):
        return None
    if any(char * 2 in p for p in bpe.vocab if p not in family):
        return None
    return char, family


def _simulate_tokenizers(n: int, char: str, family: set[str], bpe: _Bpe) -> list[int]:
    """``tokenizers``' BPE on a run of ``n`` characters: lowest (rank, position) first; stale entries whose
    current pair still makes the same piece are merged, as the Rust code does. Returns the symbol lengths."""
    rank_of = {bpe.pairs[r]: r for piece in family for r in bpe.ranks[piece]}
    sizes = [1] * n
    nxt = list(range(1, n)) + [-1]
    prv = list(range(-1, n - 1))
    heap: list[tuple[int, int, str]] = []

    def push(pos: int) -> None:
        if pos >= 0 and nxt[pos] >= 0:
            pair = (char * sizes[pos], char * sizes[nxt[pos]])
            if pair in rank_of:
                heapq.heappush(heap, (rank_of[pair], pos, pair[0] + pair[1]))

    for pos in range(n - 1):
        push(pos)
    while heap:
        _, pos, piece = heapq.heappop(heap)
        if sizes[pos] == 0 or nxt[pos] < 0:
            continue
        current = (char * sizes[pos], char * sizes[nxt[pos]])
        if current not in rank_of or current[0] + current[1] != piece:
            continue
        right = nxt[pos]
        sizes[pos] += sizes[right]
        sizes[right] = 0
        nxt[pos] = nxt[right]
        if nxt[pos] >= 0:
            prv[nxt[pos]] = pos
        push(prv[pos])
        push(pos)
    return [s for s in sizes if s]


def _simulate_sentencepiece_tied(n: int, char: str, family: set[str]) -> list[int]:
    """SentencePiece's BPE on a run whose pieces all share one score: always the leftmost mergeable pair."""
    sizes = [1] * n
    merged = True
    while merged:
        merged = False
        for i in range(len(sizes) - 1):
            if char * (sizes[i] + sizes[i + 1]) in family:
                sizes[i : i + 2] = [sizes[i] + sizes[i + 1]]
                merged = True
                break
    return sizes


#: Past this many witnesses for one piece, the piece itself stands for them (coarser, still sound).
MAX_WITNESSES_PER_PIECE = 64


def _unsafe_texts(bpe: _Bpe, chars: set[str], family: set[str]) -> tuple[dict[str, str], int]:
    """Texts that the proof cannot clear, each with the reason, and how many pieces they concern.

    Each text is a *witness*: any situation in which the two encoders could part contains it, so a
    document whose normalized text contains none of them is encoded identically by both.
    """
    merged = set(bpe.first)
    symbols = chars | merged
    unsafe: dict[str, str] = {}
    concerned: set[str] = set()

    def flag(piece: str, texts: set[str], reason: str) -> None:
        concerned.add(piece)
        for text in texts if len(texts) <= MAX_WITNESSES_PER_PIECE else {piece}:
            unsafe.setdefault(text, f"{piece!r}: {reason}")

    # Pieces whose merges are not contiguous make the per-piece order wrong for them and whatever they enclose.
    for piece, ranks in bpe.ranks.items():
        if piece not in family and ranks[-1] - ranks[0] + 1 != len(ranks):
            for left, right in bpe.pairs[ranks[0] : ranks[-1] + 1]:
                flag(left + right, {left + right}, f"merges interleaved with those of {piece!r}")
    # When xx ranks before xxx and xxxx (the only runs that xx and x can make), every x+x merge happens before
    # any longer run exists, pairing each run of x up from its left end: no lone x ever sits before a run of x.
    pairs_up = {
        piece[0]
        for piece in merged
        if len(piece) == 2 and piece[0] == piece[1]
        and all(bpe.first.get(piece[0] * k, len(bpe.pairs)) > bpe.first[piece] for k in (3, 4))
    }

    def impossible(left: str, right: str) -> bool:
        return len(left) == 1 and left in pairs_up and len(right) > 1 and set(right) == {left}

    for piece in merged - family - concerned:
        if not chars.issuperset(piece):
            flag(piece, {piece}, "holds a character that is not a piece")
            continue
        pair_rank = {bpe.pairs[r]: r for r in bpe.ranks[piece]}
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in symbols and right in symbols and (left, right) not in pair_rank:
                flag(piece, {piece}, f"SentencePiece could merge {left!r}+{right!r}, tokenizers cannot")
        # only merges whose two symbols can ever be neighbours compete
        pair_rank = {pair: rank for pair, rank in pair_rank.items() if not impossible(*pair)}
        if len(pair_rank) < 2 or piece in concerned:
            continue
        # overlaps [a][b][c] with a+b = b+c = piece: tokenizers must also take the left pair first
        overlaps = set()
        for (a, b), rank in pair_rank.items():
            c = piece[len(b) :]
            if piece.startswith(b) and (b, c) in pair_rank and rank > pair_rank[(b, c)]:
                overlaps.add(a + b + c)
        if overlaps:
            flag(piece, overlaps, "an overlap tokenizers resolves right-first")
        cascades = _cascade_witnesses(piece, pair_rank, bpe)
        if cascades:
            flag(piece, cascades, "merges ranked before it can interfere after it forms")
    return unsafe, len(concerned)


def _cascade_witnesses(piece: str, pair_rank: dict[tuple[str, str], int], bpe: _Bpe) -> set[str]:
    """Texts around which a *cascade* -- merges ranked before ``piece`` that grow a new ``piece`` symbol --
    could reach another candidate of ``piece`` or another cascade, so that processing order matters."""
    limit = bpe.first[piece]
    left_parts = {a for a, _ in pair_rank}
    right_parts = {b for _, b in pair_rank}
    grown, frontier = {piece}, [piece]
    took_right: dict[str, set[str]] = defaultdict(set)  # partner -> grown symbols that merge it on their right
    took_left: dict[str, set[str]] = defaultdict(set)
    while frontier:
        symbol = frontier.pop()
        for side, partner, merged in bpe.uses.get(symbol, []):
            if bpe.first[merged] >= limit:
                continue
            (took_right if side == "left" else took_left)[partner].add(symbol)
            if merged not in grown:
                grown.add(merged)
                frontier.append(merged)
    witnesses: set[str] = set()
    for partner, takers in took_right.items():
        for grown_symbol in takers:
            if partner in grown:  # [G][G'] : two cascades meet
                witnesses.add(grown_symbol + partner)
            if partner in left_parts:  # [G][x][y] with x+y = piece: it takes a live candidate's part
                witnesses.add(grown_symbol + piece)
            for other in took_left.get(partner, ()):  # [G][x][G'] : both sides can take x
                witnesses.add(grown_symbol + partner + other)
    for partner, takers in took_left.items():
        for grown_symbol in takers:
            if partner in grown:
                witnesses.add(partner + grown_symbol)
            if partner in right_parts:  # [w][x][G] with w+x = piece
                witnesses.add(piece + grown_symbol)
    return witnesses


def build_equivalent(backend_json: str) -> SentencePieceEquivalent:
    """Derives the SentencePiece model of a ``tokenizer.json`` and the substrings outside the proof.

    Raises :class:`NoEquivalent` when the tokenizer's pipeline has no exact SentencePiece counterpart.
    """
    config = json.loads(backend_json)
    add_dummy_prefix = _check_pipeline(config)
    model = config["model"]
    bpe = _parse(model)
    if len(set(bpe.pairs)) != len(bpe.pairs):
        raise NoEquivalent("a merge is listed twice; tokenizers keeps the later rank, which no score expresses")
    vocab = bpe.vocab
    added = {t["content"] for t in config.get("added_tokens", [])}
    unk = model["unk_token"]
    reserved = added | {unk} | {p for p in vocab if _BYTE_PIECE.fullmatch(p)}
    for left, right in bpe.pairs:
        if {left, right, left + right} & reserved:
            raise NoEquivalent(f"merge {left!r} + {right!r} involves a byte, special or added token")
    chars = {p for p in vocab if len(p) == 1}
    if chars & reserved:
        raise NoEquivalent(f"single-character special token {sorted(chars & reserved)[0]!r}")
    merged = set(bpe.first)
    family_char, family = _run_family(bpe, merged) or ("", set())
    unsafe, concerned = _unsafe_texts(bpe, chars, family)
    candidates = set(unsafe) | {token.replace(" ", SPACE_PIECE) for token in added}  # tokenizers splits these out first
    if family:
        # the shortest run length where the encoders part (or the first one not checked) is unsafe
        agree = 1
        while agree <= VERIFIED_RUN_LENGTH and _simulate_tokenizers(
            agree, family_char, family, bpe
        ) == _simulate_sentencepiece_tied(agree, family_char, family):
            agree += 1
        candidates.add(family_char * agree)
    # A text that contains another one adds nothing: keep the minimal ones.
    unsafe_substrings: set[str] = set()
    for text in sorted(candidates, key=len):
        if not any(s in text for s in unsafe_substrings):
            unsafe_substrings.add(text)

    proto = sp_pb2.ModelProto()
    family_score = -float(len(bpe.pairs) + 1)
    for piece in sorted(vocab, key=vocab.__getitem__):
        entry = proto.pieces.add(piece=piece)
        if piece == unk:
            entry.type = _PieceType.UNKNOWN
        elif _BYTE_PIECE.fullmatch(piece):
            entry.type = _PieceType.BYTE
        elif piece in added or (len(piece) > 1 and piece not in merged):
            entry.type = _PieceType.CONTROL  # never produced by merges nor matched in text, as in tokenizers
        else:
            entry.type = _PieceType.NORMAL
            entry.score = family_score if piece in family else -float(bpe.first.get(piece, 0))
    trainer = proto.trainer_spec
    trainer.model_type = sp_pb2.TrainerSpec.BPE
    trainer.vocab_size = len(vocab)
    trainer.byte_fallback = True
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = vocab[unk], -1, -1, -1
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False  # the caller prepends it, so that a text can be encoded in parts
    normalizer.escape_whitespaces = True
    normalizer.remove_extra_whitespaces = False
    touched = {char for left, right in bpe.pairs for char in left + right}
    return SentencePieceEquivalent(
        model_proto=proto.SerializeToString(),
        prefix=SPACE_PIECE if add_dummy_prefix else "",
        boundary="\n" if "\n" not in touched else None,
        unsafe_substrings=tuple(sorted(unsafe_substrings)),
        proven_pieces=len(merged) - concerned,
        unsafe_pieces=concerned,
    )
