"""Writes a Hugging Face tokenizer directory that tokenizes exactly like a SentencePiece BPE model.

transformers 5 converts a bare ``tokenizer.model`` to a ``tokenizers`` BPE on load, but orders the merges by
piece id instead of score, and its ``Metaspace`` pre-tokenizer skips the dummy prefix when the text already
starts with a space; both make its ids differ from SentencePiece's. We therefore write ``tokenizer.json``
ourselves:

- model: ``BPE`` with byte fallback, the vocabulary in id order, and one merge for every way a piece splits
  into two pieces, ordered as SentencePiece applies them: higher score first (ties: :func:`bpe_merges`);
- normalizer: prepend ``▁`` to every non-empty text and turn spaces into ``▁`` (SentencePiece's
  ``add_dummy_prefix`` and whitespace escaping, identity normalization otherwise); no pre-tokenizer, so merges
  see the whole text as SentencePiece does;
- decoder: ``▁`` back to spaces, bytes fused back into characters, the dummy prefix stripped;
- post-processor: BOS (and EOS if asked) added, as LLaMA does.

``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` so transformers loads ``tokenizer.json`` as written
instead of rebuilding a ``LlamaTokenizer`` (which would bring ``Metaspace`` back).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE

from tokenization.constants import SPACE_PIECE
from tokenization.sentencepiece_proto import (
    CONTROL,
    NORMAL,
    UNKNOWN,
    USER_DEFINED,
    ModelProto,
    piece_index,
)


def bpe_merges(proto: ModelProto) -> list[tuple[str, str]]:
    """Every (left, right) pair of mergeable pieces whose concatenation is a piece, in SentencePiece's order.

    Higher score first. Within one score, SentencePiece merges the leftmost candidate, which a fixed merge
    order can only imitate:

    - a tie among runs of one character (LLaMA's whitespace pieces, all at -1e9): merges with the longer left
      part first, so a run grows from its left end exactly as in SentencePiece;
    - any other tie (e.g. the 17953 score-0 pieces of an ``--mode anchor`` merge): shorter pieces first, each
      piece's merges together. SentencePiece's order cannot be written down here; this one builds a piece only
      from parts that can already exist, which is what lets data preparation prove a faster SentencePiece
      encoder exact (:mod:`tokenization.sentencepiece_equivalent`).

    The merges of one piece keep the longer left part first, except that where two of them can overlap
    (``[a][b][c]`` with ``a+b = b+c``) the left one comes first, as SentencePiece resolves it.
    """
    mergeable = {p.piece: i for i, p in enumerate(proto.pieces) if p.type == NORMAL}
    splits: dict[str, list[tuple[str, str]]] = {}
    for piece in mergeable:
        pairs = [(piece[:cut], piece[cut:]) for cut in range(len(piece) - 1, 0, -1)]
        pairs = [(left, right) for left, right in pairs if left in mergeable and right in mergeable]
        if pairs:
            splits[piece] = pairs
    ties: dict[float, list[str]] = defaultdict(list)
    for piece in splits:
        ties[proto.pieces[mergeable[piece]].score].append(piece)
    keyed: list[tuple[tuple, tuple[str, str]]] = []
    for score, pieces in ties.items():
        if len(pieces) > 1 and len(set("".join(pieces))) == 1:
            for piece in pieces:
                keyed += [((-score, -len(left), mergeable[piece]), (left, right)) for left, right in splits[piece]]
        else:
            for piece in pieces:
                key = (-score, len(piece), mergeable[piece])
                keyed += [((*key, k), pair) for k, pair in enumerate(overlaps_left_first(piece, splits[piece]))]
    keyed.sort(key=lambda item: item[0])
    return [pair for _, pair in keyed]


def overlaps_left_first(piece: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` reordered so that of two merges that can overlap, ``[a][b][c]`` with ``a+b = b+c = piece``,
    the left one ``(a, b)`` comes first; otherwise (and where overlaps form a cycle) the given order."""
    present = set(pairs)
    before: dict[tuple[str, str], set[tuple[str, str]]] = {pair: set() for pair in pairs}
    for a, b in pairs:
        right = (b, piece[len(b) :])
        if piece.startswith(b) and right in present and right != (a, b):
            before[right].add((a, b))
    ordered: list[tuple[str, str]] = []
    remaining = list(pairs)
    while remaining:
        ready = next((p for p in remaining if not before[p] - set(ordered)), remaining[0])
        ordered.append(ready)
        remaining.remove(ready)
    return ordered


def special_token(proto: ModelProto, piece_id: int) -> str | None:
    if 0 <= piece_id < len(proto.pieces) and proto.pieces[piece_id].type in (CONTROL, UNKNOWN):
        return proto.pieces[piece_id].piece
    return None


def special_tokens(proto: ModelProto, pad_token: str | None) -> dict[str, str | None]:
    spec = proto.trainer_spec
    unk = special_token(proto, spec.unk_id)
    bos = special_token(proto, spec.bos_id)
    eos = special_token(proto, spec.eos_id)
    pad = None
    if pad_token is not None:
        if pad_token not in {p.piece for p in proto.pieces}:
            raise ValueError(f"pad token {pad_token!r} is not a piece of the model; merge with --pad_token first")
        pad = pad_token
    return {"bos_token": bos, "eos_token": eos, "unk_token": unk, "pad_token": pad}


def build_tokenizer(proto: ModelProto, pad_token: str | None = None, add_bos: bool = True, add_eos: bool = False) -> Tokenizer:
    if proto.trainer_spec.model_type != proto.trainer_spec.BPE:
        raise ValueError("a Hugging Face BPE tokenizer.json can only be written for a SentencePiece BPE model")
    norm = proto.normalizer_spec
    if norm.precompiled_charsmap or norm.remove_extra_whitespaces or not norm.escape_whitespaces:
        raise ValueError(
            f"the model's normalizer ({norm.name or 'custom'}) is not reproduced by tokenizer.json; "
            "pass an identity-normalized LLaMA-family base"
        )
    vocab = piece_index(proto)
    if len(vocab) != len(proto.pieces):
        raise ValueError("the model has duplicate pieces; SentencePiece itself would refuse it")
    specials = special_tokens(proto, pad_token)
    unk = specials["unk_token"]
    model = BPE(
        vocab=vocab,
        merges=bpe_merges(proto),
        unk_token=unk,
        fuse_unk=True,
        byte_fallback=proto.trainer_spec.byte_fallback,
    )
    tokenizer = Tokenizer(model)
    steps = []
    if proto.normalizer_spec.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPACE_PIECE))
    steps.append(normalizers.Replace(" ", SPACE_PIECE))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = None
    decode_steps = [decoders.Replace(SPACE_PIECE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if proto.normalizer_spec.add_dummy_prefix:
        decode_steps.append(decoders.Strip(content=" ", left=1, right=0))
    tokenizer.decoder = decoders.Sequence(decode_steps)
    # Control pieces (and <unk>) are special: matched whole in text, skipped when decoding with skip_special_tokens.
    tokenizer.add_special_tokens(
        [AddedToken(p.piece, special=True, normalized=False) for p in proto.pieces if p.type in (CONTROL, UNKNOWN)]
    )
    user = [AddedToken(p.piece, special=False, normalized=False) for p in proto.pieces if p.type == USER_DEFINED]
    if user:
        tokenizer.add_tokens(user)
    bos, eos = specials["bos_token"], specials["eos_token"]
    single = ([f"{bos}:0"] if add_bos and bos else []) + ["$A:0"] + ([f"{eos}:0"] if add_eos and eos else [])
    pair = single + ([f"{bos}:1"] if add_bos and bos else []) + ["$B:1"] + ([f"{eos}:1"] if add_eos and eos else [])
    used = [t for t in (bos if add_bos else None, eos if add_eos else None) if t]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=" ".join(single), pair=" ".join(pair), special_tokens=[(t, vocab[t]) for t in dict.fromkeys(used)]
    )
    return tokenizer


def tokenizer_config(proto: ModelProto, pad_token: str | None, add_bos: bool = True, add_eos: bool = False) -> dict:
    specials = special_tokens(proto, pad_token)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        **specials,
        "clean_up_tokenization_spaces": False,
    }


def write_hf_tokenizer_files(proto: ModelProto, directory: Path, pad_token: str | None = None) -> None:
    """Writes tokenizer.model, tokenizer.json, tokenizer_config.json and special_tokens_map.json into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.model").write_bytes(proto.SerializeToString())
    build_tokenizer(proto, pad_token).save(str(directory / "tokenizer.json"))
    config = tokenizer_config(proto, pad_token)
    (directory / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    specials = {k: v for k, v in special_tokens(proto, pad_token).items() if v is not None}
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, ensure_ascii=False, indent=2) + "\n")

