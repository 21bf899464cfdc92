"""What counts as a CJK character, for choosing which pieces the clean merge may add and for statistics.

Chinese text is made of CJK ideographs and CJK punctuation. The clean merge adds only pieces built from these,
so that text without them (English, code, numbers) can never meet an added piece and tokenizes exactly as with
the base vocabulary.
"""

from __future__ import annotations

import re

#: Unified ideographs (incl. extensions A-G), compatibility ideographs, radicals, and 々〆〇.
IDEOGRAPH_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x20000, 0x2FA1F),  # extensions B-F, compatibility supplement
    (0x30000, 0x323AF),  # extensions G-H
)

#: CJK punctuation: CJK Symbols and Punctuation (minus U+3000 ideographic space and the ranges above), vertical
#: and compatibility forms, and the fullwidth punctuation of Halfwidth and Fullwidth Forms (not its letters/digits).
PUNCTUATION_RANGES: tuple[tuple[int, int], ...] = (
    (0x3001, 0x3004),
    (0x3008, 0x3020),
    (0x3030, 0x3037),
    (0x303C, 0x303F),
    (0xFE10, 0xFE1F),
    (0xFE30, 0xFE4F),
    (0xFF01, 0xFF0F),
    (0xFF1A, 0xFF20),
    (0xFF3B, 0xFF40),
    (0xFF5B, 0xFF65),
)


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in ranges)


def is_cjk_ideograph(char: str) -> bool:
    return _in(IDEOGRAPH_RANGES, char)


def is_cjk_punctuation(char: str) -> bool:
    return _in(PUNCTUATION_RANGES, char)


def is_cjk_char(char: str) -> bool:
    """A CJK ideograph or CJK punctuation mark (never whitespace, a digit or a Latin letter)."""
    return is_cjk_ideograph(char) or is_cjk_punctuation(char)


def is_cjk_piece(text: str) -> bool:
    """True for a non-empty string made only of CJK ideographs and CJK punctuation."""
    return bool(text) and all(is_cjk_char(c) for c in text)


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


CJK_RUN = re.compile(f"[{_class(IDEOGRAPH_RANGES + PUNCTUATION_RANGES)}]+")


def cjk_runs(text: str) -> list[str]:
    """The maximal runs of CJK characters in ``text``, in order."""
    return CJK_RUN.findall(text)


def count_cjk_chars(text: str) -> int:
    return sum(len(run) for run in CJK_RUN.findall(text))
