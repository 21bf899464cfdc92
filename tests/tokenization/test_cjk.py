from tokenization.cjk import cjk_runs, count_cjk_chars, is_cjk_char, is_cjk_piece


def test_ideographs_and_cjk_punctuation_are_cjk_but_not_digits_latin_or_spaces() -> None:
    assert all(is_cjk_char(c) for c in "中文漢字〇々。、《》「」！（）：；？𠀀")
    assert not any(is_cjk_char(c) for c in "aZ09 \u3000\u2581,.!?ＡＺ０９ㄅあア한")
    assert is_cjk_piece("中华人民共和国") and is_cjk_piece("》。")
    assert not is_cjk_piece("▁中国") and not is_cjk_piece("2%。") and not is_cjk_piece("")


def test_runs_and_counts() -> None:
    text = "LLaMA 在2023年发布，共有4种规模。"
    assert cjk_runs(text) == ["在", "年发布，共有", "种规模。"]
    assert count_cjk_chars(text) == 11
