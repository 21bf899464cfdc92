"""Writes a Hugging Face tokenizer directory that tokenizes exactly like a SentencePiece BPE model.

transformers 5 converts a bare ``tokenizer.model`` to a ``tokenizers`` BPE on load, but orders the merges by
piece id instead of score, and its ``Metaspace`` pre-tokenizer skips the dummy prefix when the text already
starts with a space; both make its ids differ from SentencePiece's. We therefore write ``tokenizer.json``
ourselves:

- model: ``BPE`` with byte fallback, the vocabulary in id order, and one merge for every way a piece splits
  into two pieces, ordered as SentencePiece applies them: higher score first. Where scores tie (LLaMA's
  whitespace-run pieces all sit at -1e9) SentencePiece merges the leftmost pair; merges with the longer left
  part come first, which reproduces that for runs of spaces (a run grows from its left end);
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
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE

from tokenization.sentencepiece_proto import (
    CONTROL,
    NORMAL,
    UNKNOWN,
    USER_DEFINED,
    ModelProto,
    piece_index,
)

SPACE_PIECE = "\u2581"


def bpe_merges(proto: ModelProto) -> list[tuple[str, str]]:
    """Every (left, right) pair of mergeable pieces whose concatenation is a piece, in SentencePiece's order."""
    mergeable = {p.piece: i for i, p in enumerate(proto.pieces) if p.type == NORMAL}
    keyed: list[tuple[float, int, int, str, str]] = []
    for piece, index in mergeable.items():
        score = proto.pieces[index].score
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in mergeable and right in mergeable:
                keyed.append((-score, -cut, index, left, right))
    keyed.sort()
    return [(left, right) for *_, left, right in keyed]


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
            raise ValueError(f"pad token {pad_token!r} is not a piece of the model; merge with --pad-token first")
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

