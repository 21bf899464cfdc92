import pytest

from datamodules.prompt_templates import (
    LLAMA2_ZH_SYSTEM_PROMPT,
    get_template,
    is_placeholder_input,
    join_instruction,
)
from tokenization.errors import UserError


def test_alpaca_v1_is_chinese_alpacas_training_template_with_trailing_space():
    text = get_template("alpaca_v1").format("你好")
    assert text == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\n你好\n\n### Response: "
    )
    assert text.endswith("### Response: ")


def test_llama2_zh_is_chinese_alpaca2_template_with_default_system_prompt():
    assert LLAMA2_ZH_SYSTEM_PROMPT == "You are a helpful assistant. 你是一个乐于助人的助手。"
    assert get_template("llama2_zh").format("你好") == (
        "[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\n你好 [/INST]"
    )
    assert get_template("llama2_zh", system_prompt="S").format("Q") == "[INST] <<SYS>>\nS\n<</SYS>>\n\nQ [/INST]"


def test_user_template_string_and_split_keeps_head_and_tail():
    template = get_template("问：{instruction}\n答：")
    assert template.name == "custom"
    assert template.format("1+1?") == "问：1+1?\n答："
    assert template.split("x") == ("问：", "x", "\n答：")


@pytest.mark.parametrize(
    "bad, match",
    [("alpaca_v2", "unknown prompt template"), ("{instruction} {name}", "unknown slots")],
)
def test_bad_templates_are_refused_with_the_fix(bad, match):
    with pytest.raises(UserError, match=match):
        get_template(bad)


@pytest.mark.parametrize("placeholder", ["无输入", "Noinuput", "<noinput>", "", "  "])
def test_placeholder_inputs_count_as_empty(placeholder):
    assert is_placeholder_input(placeholder)
    assert join_instruction("指令", placeholder) == "指令"


def test_real_input_goes_on_a_new_line():
    assert join_instruction("翻译", "hello") == "翻译\nhello"
    assert join_instruction("翻译", None) == "翻译"
    assert not is_placeholder_input("[一张山景图片]")
