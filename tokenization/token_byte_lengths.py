"""How many UTF-8 bytes and characters of text each token id stands for: the denominators of bits per byte.

Token perplexity cannot compare two tokenizers; bits per byte (per character) can, if every scored token is charged
exactly the bytes it covers. The table is built once per tokenizer from its vocabulary:

- a SentencePiece byte-fallback piece ``<0xAB>`` is one byte, ``▁`` is a space, any other piece its own UTF-8 text;
- a byte-level BPE token (GPT-2's byte alphabet: SmolLM2, LLaMA-3, Qwen2) is the bytes its characters map to;
- a special token (BOS, EOS, PAD, control pieces) stands for no text: 0; a non-special added token is its text.

A token's characters are the UTF-8 lead bytes among its bytes, so a character split over several byte tokens is
counted once, where it starts, and the counts of a whole text's tokens add up to its number of code points.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tokenization.byte_level_base import uses_byte_level
from tokenization.byte_level_tokens import token_bytes

BYTE_FALLBACK_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
SENTENCEPIECE_SPACE = "\u2581"


@dataclass(frozen=True)
class TokenByteLengths:
    """Per token id: the UTF-8 bytes and the characters (code points starting in it) it stands for."""

    bytes: list[int]
    chars: list[int]


def is_byte_level(tokenizer: Any) -> bool:
    """Whether a Hugging Face fast tokenizer writes its tokens in the byte-level alphabet."""
    document = json.loads(tokenizer.backend_tokenizer.to_str())
    return uses_byte_level(document.get("pre_tokenizer")) or uses_byte_level(document.get("decoder"))


def piece_bytes(piece: str) -> bytes:
    """The text bytes of a SentencePiece-style piece: byte fallback is one byte, ``▁`` a space."""
    fallback = BYTE_FALLBACK_PIECE.match(piece)
    if fallback:
        return bytes([int(fallback.group(1), 16)])
    return piece.replace(SENTENCEPIECE_SPACE, " ").encode("utf-8")


def character_count(data: bytes) -> int:
    """UTF-8 lead bytes: the characters that start in ``data`` (continuation bytes are ``10xxxxxx``)."""
    return sum(1 for byte in data if byte & 0xC0 != 0x80)


def token_texts(tokenizer: Any) -> list[bytes]:
    """The bytes each token id of a Hugging Face fast tokenizer stands for, ``len(tokenizer)`` entries."""
    byte_level = is_byte_level(tokenizer)
    added = tokenizer.added_tokens_decoder
    special = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    texts: list[bytes] = []
    for index, piece in enumerate(pieces):
        if index in special or piece is None or (index in added and added[index].special):
            texts.append(b"")
        elif index in added:
            texts.append(added[index].content.encode("utf-8"))
        elif byte_level:
            texts.append(token_bytes(piece))
        else:
            texts.append(piece_bytes(piece))
    return texts


def token_byte_lengths(tokenizer: Any) -> TokenByteLengths:
    """The lookup table of a Hugging Face fast tokenizer (see the module docstring)."""
    texts = token_texts(tokenizer)
    return TokenByteLengths(bytes=[len(text) for text in texts], chars=[character_count(text) for text in texts])
