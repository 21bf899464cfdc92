"""The byte alphabet of byte-level tokenizers and which byte strings can only occur in text with CJK characters."""

from __future__ import annotations

import pytest
from tokenizers import pre_tokenizers

from tests.tokenization.byte_level_bases import bytes_token
from tokenization.byte_level_tokens import bytes_to_unicode, forces_cjk, token_bytes, whole_text


def test_alphabet_is_the_one_tokenizers_uses() -> None:
    assert set(bytes_to_unicode().values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert bytes_to_unicode()[ord(" ")] == "Ġ" and bytes_to_unicode()[ord("\n")] == "Ċ"
    data = "the我们 ，Ａ\n".encode()
    assert token_bytes(bytes_token(data)) == data
    with pytest.raises(ValueError, match="not a byte-level token"):
        token_bytes("中")


def test_whole_text_tells_partial_utf8_tokens() -> None:
    assert whole_text("中".encode()) == "中"
    assert whole_text("中".encode()[:2]) is None
    assert whole_text("中".encode()[1:]) is None


@pytest.mark.parametrize(
    "data, forced",
    [
        pytest.param("中".encode(), True, id="a whole ideograph"),
        pytest.param("，".encode(), True, id="fullwidth comma, CJK punctuation"),
        pytest.param("the中".encode(), True, id="latin then ideograph"),
        pytest.param("中".encode()[:2], True, id="E4 B8: only U+4E00..U+4E3F follow"),
        pytest.param("the".encode() + "我".encode()[:1], True, id="E6: every completion U+6000..U+6FFF is CJK"),
        pytest.param("䷀".encode()[:2], False, id="E4 B7: also Yijing hexagrams, not CJK"),
        pytest.param("Ａ".encode()[:2], False, id="EF BC: also fullwidth Latin letters"),
        pytest.param("Ａ".encode(), False, id="fullwidth Latin A"),
        pytest.param("\u3000".encode(), False, id="ideographic space"),
        pytest.param("中".encode()[1:], False, id="a tail: any lead byte could precede it"),
        pytest.param(b"hello world", False, id="ASCII"),
        pytest.param("é".encode(), False, id="Latin-1 letter"),
        pytest.param("😀".encode()[:3], False, id="partial emoji"),
    ],
)
def test_forces_cjk(data: bytes, forced: bool) -> None:
    assert forces_cjk(data) is forced
