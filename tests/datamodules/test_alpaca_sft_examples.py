from pathlib import Path

import pytest
from transformers import AutoTokenizer

from datamodules.alpaca_records import AlpacaRecord, new_skip_report
from datamodules.prompt_templates import get_template
from datamodules.sft_examples import TruncationStats, encode_records
from tokenization.constants import IGNORE_INDEX


@pytest.fixture(scope="module")
def tokenizer(zh_tokenizer_dir: Path):
    return AutoTokenizer.from_pretrained(zh_tokenizer_dir)


def record(instruction: str, output: str, input_: str = "") -> AlpacaRecord:
    return AlpacaRecord(instruction, input_, output, Path("mem.json"), 1, 0)


def encode(tokenizer, records, max_seq_length=512, template="alpaca_v1"):
    report, stats = new_skip_report(), TruncationStats()
    examples = encode_records(records, tokenizer, get_template(template), max_seq_length, report, stats)
    return examples, report, stats


@pytest.mark.parametrize("template", ["alpaca_v1", "llama2_zh"])
def test_masking_is_exact_to_the_token(tokenizer, template):
    rec = record("把这句话翻译成英文", "I like cats.", input_="我喜欢猫。")
    [example], report, _ = encode(tokenizer, [rec], template=template)
    prompt = get_template(template).format("把这句话翻译成英文\n我喜欢猫。")
    source = [tokenizer.bos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    target = [*tokenizer("I like cats.", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert list(example.input_ids) == source + target
    assert example.labels == [IGNORE_INDEX] * len(source) + target
    assert tokenizer.decode(target, skip_special_tokens=True).strip() == "I like cats."
    assert report.total == 0


def test_long_prompt_is_cut_inside_the_instruction_keeping_marker_and_eos(tokenizer):
    rec = record("请总结下面的文章。", "好。", input_="很长的文章。" * 200)
    [example], _, stats = encode(tokenizer, [rec], max_seq_length=64)
    ids = list(example.input_ids)
    assert len(ids) == 64 and ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    marker = tokenizer("\n\n### Response: ", add_special_tokens=False)["input_ids"][-4:]
    target = [*tokenizer("好。", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert ids[example.prompt_length - len(marker) : example.prompt_length] == marker
    assert ids[example.prompt_length :] == target
    assert tokenizer.decode(ids[1:12]).startswith("Below is an instruction")
    assert (stats.prompt_truncated, stats.output_truncated) == (1, 0)


def test_long_output_is_cut_after_the_prompt_and_keeps_its_eos(tokenizer):
    rec = record("写一篇长文。", "很长的回答。" * 300)
    [example], _, stats = encode(tokenizer, [rec], max_seq_length=96)
    assert len(example) == 96 and example.input_ids[-1] == tokenizer.eos_token_id
    assert "写一篇" not in tokenizer.decode(example.input_ids[: example.prompt_length])  # instruction gave way first
    assert "### Response:" in tokenizer.decode(example.input_ids[: example.prompt_length])
    assert (stats.prompt_truncated, stats.output_truncated) == (1, 1)


def test_example_with_no_room_for_a_label_is_dropped_and_counted(tokenizer):
    examples, report, _ = encode(tokenizer, [record("问题", "回答"), record("问题", "回答")], max_seq_length=12)
    assert examples == []
    assert report.counts["no_label_after_truncation"] == 2
    assert "mem.json:1: no_label_after_truncation" in report.examples[0]
