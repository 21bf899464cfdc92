"""What the bytes of a byte-level BPE token say about the text it can occur in.

Byte-level tokenizers (GPT-2, SmolLM2, LLaMA-3, Qwen2, Tekken) write every byte as one printable character
(``bytes_to_unicode``), so a token is a byte string that may end or start inside a UTF-8 character. A Chinese
character takes three bytes, so extending such a vocabulary needs partial-UTF-8 intermediate tokens.

:func:`forces_cjk` decides whether a byte string can only occur in text that holds a CJK character: it holds a
whole CJK character, or it ends in the lead of a character every completion of which is CJK (``E4 B8`` can only
become U+4E00..U+4E3F). A merge whose result forces CJK can never apply to text without CJK characters.

:func:`unreachable_token_ids` finds tokens that decode to whole characters but that no text encodes to: their
own text segments differently, so their embedding rows are wasted.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from tokenizers import Tokenizer

from tokenization.cjk import is_cjk_char


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, shared by every byte-level tokenizer."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level token stands for; ``ValueError`` if it is not written in the byte alphabet."""
    table = unicode_to_bytes()
    try:
        return bytes(table[char] for char in token)
    except KeyError as missing:
        raise ValueError(f"{token!r} is not a byte-level token (character {missing} is outside the byte alphabet)")


def whole_text(data: bytes) -> str | None:
    """The text of ``data`` if it is whole UTF-8 characters, else None (a partial-UTF-8 token)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def unreachable_token_ids(tokenizer: Tokenizer, ids: Iterable[int]) -> list[int]:
    """Those of ``ids`` whose token decodes to whole characters that do not encode back to exactly that token."""
    texts = {i: whole_text(token_bytes(tokenizer.id_to_token(i))) for i in ids}
    whole = [i for i, text in texts.items() if text]
    encoded = tokenizer.encode_batch([texts[i] for i in whole], add_special_tokens=False)
    return [i for i, encoding in zip(whole, encoded) if encoding.ids != [i]]


def _sequence_length(lead: int) -> int:
    """Length of the UTF-8 sequence a byte starts: 1-4, or 0 for a continuation or invalid byte."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


_LEAD_BITS = {2: 0x1F, 3: 0x0F, 4: 0x07}


@lru_cache(maxsize=65536)
def _prefix_forces_cjk(prefix: bytes) -> bool:
    """True if every character whose UTF-8 encoding starts with the incomplete ``prefix`` is CJK."""
    length = _sequence_length(prefix[0])
    value = prefix[0] & _LEAD_BITS[length]
    for byte in prefix[1:]:
        value = (value << 6) | (byte & 0x3F)
    missing = length - len(prefix)
    low, high = value << (6 * missing), ((value + 1) << (6 * missing)) - 1
    return all(is_cjk_char(chr(c)) for c in range(low, high + 1) if not 0xD800 <= c <= 0xDFFF)


def forces_cjk(data: bytes) -> bool:
    """True if any text containing ``data`` contains a CJK character (see the module docstring)."""
    i = 0
    while i < len(data) and _sequence_length(data[i]) == 0:
        i += 1  # the tail of a character that began before the token: any lead byte could precede it
    while i < len(data):
        length = _sequence_length(data[i])
        if length == 0:
            return False  # not UTF-8
        chunk = data[i : i + length]
        if len(chunk) < length:
            return _prefix_forces_cjk(chunk)
        if any(_sequence_length(b) != 0 for b in chunk[1:]):
            return False
        if length > 1 and is_cjk_char(chunk.decode("utf-8", errors="replace")):
            return True
        i += length
    return False
