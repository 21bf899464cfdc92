"""``merge`` with a byte-level base: ids, specials, reachability and refusals, on a toy base trained here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from tests.tokenization.byte_level_bases import TOY_SPECIAL, bytes_token, write_toy_base
from tokenization.atomic_write import OutputRefusedError
from tokenization.bpe_merge import merge_bpe_extension
from tokenization.bpe_training import FORMAT, train_bpe_extension
from tokenization.byte_level_base import load_byte_level_base
from tokenization.errors import UserError


@pytest.fixture(scope="module")
def learned(toy_base: Path, wiki5_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 merges learned on the toy base."""
    path = tmp_path_factory.mktemp("learned") / "zh.json"
    train_bpe_extension(toy_base, [wiki5_corpus], path, num_merges=400)
    return path


def test_new_tokens_follow_every_base_id_and_the_base_stays_as_it_was(
    toy_base: Path, learned: Path, tmp_path: Path
) -> None:
    report = merge_bpe_extension(toy_base, learned, tmp_path / "out")
    base = json.loads((toy_base / "tokenizer.json").read_text(encoding="utf-8"))
    written = json.loads((tmp_path / "out" / "tokenizer.json").read_text(encoding="utf-8"))
    special_id = next(t["id"] for t in base["added_tokens"] if t["content"] == TOY_SPECIAL)
    assert special_id == len(base["model"]["vocab"])  # after the vocabulary, as Qwen2's specials are
    assert report["first_new_id"] == special_id + 1 and report["added_tokens"] == 400
    assert written["added_tokens"] == base["added_tokens"]
    vocab = written["model"]["vocab"]
    assert all(vocab[token] == i for token, i in base["model"]["vocab"].items())
    new_ids = set(vocab.values()) - set(base["model"]["vocab"].values()) - {special_id}
    assert sorted(new_ids) == list(range(special_id + 1, special_id + 401))
    assert written["model"]["merges"][: len(base["model"]["merges"])] == base["model"]["merges"]
    assert written["model"]["merges"][len(base["model"]["merges"]) :] == json.loads(learned.read_text())["merges"]
    for key in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        assert written[key] == base[key]
    assert report["whole_char_tokens"] + report["partial_utf8_tokens"] == 400 and report["partial_utf8_tokens"] > 0
    assert json.loads((tmp_path / "out" / "merge_report.json").read_text())["added_tokens"] == 400
    assert json.loads((tmp_path / "out" / "zhllama_output.json").read_text())["kind"] == "tokenizer"

    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert len(auto) == report["vocab_size"] and auto.eos_token == TOY_SPECIAL
    for text in ["the我们 中华人民共和国", f"你好{TOY_SPECIAL}world", "plain English text."]:
        assert auto(text)["input_ids"] == tokenizer.encode(text).ids
        assert auto.decode(auto(text)["input_ids"]) == text


def char_chain(base: Tokenizer, char: str) -> list[tuple[str, str]]:
    """Merges that build ``char`` from the base's segmentation of its bytes, left to right."""
    parts = [t.value for t in base.model.tokenize(bytes_token(char.encode()))]
    merges, built = [], parts[0]
    for part in parts[1:]:
        merges.append((built, part))
        built += part
    return merges


def test_unreachable_tokens_are_dropped_with_what_builds_on_them(toy_base: Path, tmp_path: Path) -> None:
    base = load_byte_level_base(toy_base)
    wo, men, de = (bytes_token(c.encode()) for c in "我们的")
    merges = [m for c in "我们的" for m in char_chain(base.tokenizer, c)]
    # 我们 fires before 们的 could, so 我+们的 never forms by itself, nor does anything built on it.
    merges += [(wo, men), (men, de), (wo, men + de), (wo + men + de, de)]
    learned = tmp_path / "zh.json"
    learned.write_text(json.dumps({"format": FORMAT, "base_sha256": base.sha256, "merges": merges}))
    report = merge_bpe_extension(toy_base, learned, tmp_path / "out")
    assert report["dropped_unreachable"] == 2 and report["added_tokens"] == len(merges) - 2
    assert report["dropped_examples"] == ["我们的", "我们的的"]
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    encoding = tokenizer.encode("我们的", add_special_tokens=False)
    assert [tokenizer.decode([i]) for i in encoding.ids] == ["我们", "的"]
    assert len(tokenizer.encode("们的", add_special_tokens=False).ids) == 1


def test_refuses_foreign_merges_bad_files_and_foreign_outputs(
    toy_base: Path, learned: Path, english_prose: list[str], tmp_path: Path
) -> None:
    other = write_toy_base(tmp_path / "other", english_prose[:100], vocab_size=500)
    with pytest.raises(UserError, match="zh.json: was learned on another base"):
        merge_bpe_extension(other, learned, tmp_path / "out")
    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    with pytest.raises(UserError, match="broken.json: not a `tokenizer train --kind bpe` output"):
        merge_bpe_extension(toy_base, broken, tmp_path / "out")
    with pytest.raises(UserError, match="absent.json: not found"):
        merge_bpe_extension(toy_base, tmp_path / "absent.json", tmp_path / "out")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefusedError, match="zhllama did not write"):
        merge_bpe_extension(toy_base, learned, foreign)
    with pytest.raises(OutputRefusedError, match="holds this command's input"):
        merge_bpe_extension(toy_base, learned, toy_base.parent)
    assert (foreign / "notes.txt").read_text() == "mine" and not (tmp_path / "out").exists()
