"""Mistral's Tekken tokenizer (``tekken_*.json``, tiktoken format) as a byte-level BPE ``tokenizers.Tokenizer``.

A tiktoken vocabulary is a list of byte strings by rank; BPE merges the adjacent pair whose concatenation has the
lowest rank. transformers' ``MistralConverter`` turns ranks into an ordered merge list; it needs mistral-common
only for the special tokens of older files (no ``special_tokens`` key, as in ``tekken_240911.json``), so those
are listed here (mistral-common's ``Tekkenizer.DEPRECATED_SPECIAL_TOKENS``, padded with ``<SPECIAL_i>``).
Ids: special tokens first (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ...), then the vocabulary by rank, cut at
``default_vocab_size`` as mistral-common does. BOS is added, as Mistral's models expect.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE

from tokenization.errors import UserError

DEPRECATED_SPECIAL_TOKENS: tuple[str, ...] = (
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]",
    "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
)
SPECIAL_TEMPLATE = "<SPECIAL_{id}>"
SPECIAL_ROLES = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


def is_tekken_file(path: Path) -> bool:
    return path.is_file() and "tekken" in path.name and path.name.endswith(".json")


def special_token_strings(raw: dict) -> list[str]:
    count = raw["config"]["default_num_special_tokens"]
    if "special_tokens" in raw:
        listed = [token["token_str"] for token in raw["special_tokens"]]
    else:
        listed = list(DEPRECATED_SPECIAL_TOKENS)
    return listed + [SPECIAL_TEMPLATE.format(id=i) for i in range(len(listed), count)]


def read_tekken(path: Path) -> tuple[Tokenizer, dict[str, str]]:
    """The converted tokenizer and its special-token roles (bos/eos/unk/pad)."""
    from transformers.integrations.mistral.tokenizer import MistralConverter

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        config = raw["config"]
        specials = special_token_strings(raw)
        ranked = raw["vocab"][: config["default_vocab_size"] - len(specials)]
        ranks = {base64.b64decode(entry["token_bytes"]): rank for rank, entry in enumerate(ranked)}
        pattern = config["pattern"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a Tekken tokenizer file ({type(exc).__name__}: {exc})") from None
    vocab, merges = MistralConverter._extract_merges(ranks)
    vocab = {token: rank + len(specials) for token, rank in vocab.items()} | {s: i for i, s in enumerate(specials)}
    tokenizer = Tokenizer(BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos = SPECIAL_ROLES["bos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    return tokenizer, dict(SPECIAL_ROLES)
