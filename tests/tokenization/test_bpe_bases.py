"""Loading byte-level bases: a tokenizer.json, its directory, a .gguf (SmolLM2) and a Tekken file (Mistral)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tokenization.byte_level_bases import TOY_SPECIAL
from tokenization.byte_level_base import ByteLevelBase, load_byte_level_base
from tokenization.errors import UserError
from tokenization.tokenizer_kind import tokenizer_kind


def test_a_directory_and_its_tokenizer_json_are_the_same_base(toy_base: Path) -> None:
    from_dir, from_file = load_byte_level_base(toy_base), load_byte_level_base(toy_base / "tokenizer.json")
    assert from_dir.sha256 == from_file.sha256 and load_byte_level_base(from_dir) is from_dir  # loaded once
    assert from_dir.config == {"eos_token": TOY_SPECIAL, "pad_token": TOY_SPECIAL}
    assert tokenizer_kind(toy_base) == "byte_level" and tokenizer_kind(toy_base / "tokenizer.json") == "byte_level"


def test_a_sentencepiece_model_is_told_by_its_content_not_its_name(base_tokenizer_model: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "tokenizer.model.v1"  # how mistral-common ships it
    renamed.write_bytes(base_tokenizer_model.read_bytes())
    assert tokenizer_kind(renamed) == "sentencepiece"


def test_refuses_what_is_not_a_byte_level_bpe(zh_tokenizer_dir: Path, tmp_path: Path) -> None:
    assert tokenizer_kind(zh_tokenizer_dir) == "sentencepiece"
    with pytest.raises(UserError, match="tokenizer.json: not a byte-level BPE tokenizer: it has no ByteLevel"):
        load_byte_level_base(zh_tokenizer_dir / "tokenizer.json")
    only_json = tmp_path / "hf_only"
    only_json.mkdir()
    (only_json / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "WordLevel"}}))
    with pytest.raises(UserError, match="hf_only: holds a tokenizer.json only"):
        load_byte_level_base(only_json)
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(UserError, match="text.json: not a tokenizer.json"):
        load_byte_level_base(tmp_path / "text.json")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(UserError, match="broken.gguf: cannot read a tokenizer from this GGUF"):
        load_byte_level_base(tmp_path / "broken.gguf")
    (tmp_path / "tekken_broken.json").write_text(json.dumps({"vocab": []}))
    with pytest.raises(UserError, match="tekken_broken.json: not a Tekken tokenizer file"):
        load_byte_level_base(tmp_path / "tekken_broken.json")


@pytest.mark.demo_assets
def test_smollm2_from_its_gguf(smollm2_base: ByteLevelBase) -> None:
    base = smollm2_base
    tokenizer = base.tokenizer
    assert tokenizer.get_vocab_size() == 49152 and len(base.document["model"]["merges"]) == 48900
    assert base.config["bos_token"] == "<|im_start|>" and base.config["eos_token"] == "<|im_end|>"
    assert "<|im_start|>" in base.config["chat_template"]
    assert tokenizer.encode("12345").tokens == ["1", "2", "3", "4", "5"]  # SmolLM2 splits digits
    assert tokenizer.encode("<|im_start|>user").ids[0] == 1
    text = "Hello, 世界! café\n\tdef f(): pass"
    assert tokenizer.decode(tokenizer.encode(text).ids) == text


@pytest.mark.demo_assets
def test_tekken_converted_from_its_tiktoken_ranks(tekken_base: ByteLevelBase) -> None:
    base = tekken_base
    tokenizer = base.tokenizer
    assert tokenizer.get_vocab_size() == 131072 and base.document["model"]["ignore_merges"]
    assert [tokenizer.token_to_id(t) for t in ("<unk>", "<s>", "</s>", "[INST]", "<SPECIAL_999>")] == [0, 1, 2, 3, 999]
    assert base.config == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    encoding = tokenizer.encode("Hello 世界")
    assert encoding.ids[0] == 1 and min(encoding.ids[1:]) >= 1000  # BOS, then rank + 1000
    text = "Hello, 世界! café\n\tdef f(): pass"
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
