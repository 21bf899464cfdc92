"""``zhllama tokenizer train | merge | stats`` as a user runs them."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from cli.main import main

EXPECTED_ALPACA_SHA256 = "2d967e855b1213a439df6c8ce2791f869c84b4f3b6cfacf22b86440b8192a2f8"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tokenizer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.shared_data
def test_merge_anchor_with_pad_reproduces_chinese_alpaca(
    capsys, llama_tokenizer_model, chinese_sp_model, shared_data, tmp_path
) -> None:
    out = tmp_path / "alpaca"
    code, stdout, _ = run(
        capsys, "merge", "--base", llama_tokenizer_model, "--add", chinese_sp_model, "--output", out,
        "--mode", "anchor", "--pad_token", "[PAD]",
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["mode"] == "anchor" and report["total_pieces"] == 49954
    written = (out / "tokenizer.model").read_bytes()
    assert written == (shared_data / "tokenizers" / "expected" / "chinese_alpaca_v1_49954.model").read_bytes()
    assert hashlib.sha256(written).hexdigest() == EXPECTED_ALPACA_SHA256
    assert {p.name for p in out.iterdir()} >= {
        "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"
    }


@pytest.mark.parametrize("broken", ["missing", "tokenizer_json", "text"])
def test_merge_refuses_bad_inputs_naming_the_file_and_leaves_nothing(
    capsys, chinese_sp_model, tmp_path, broken
) -> None:
    if broken == "missing":
        base = tmp_path / "llama" / "tokenizer.model"
        expected = "tokenizer.model: file not found"
    elif broken == "tokenizer_json":
        base = tmp_path / "hf_only"
        base.mkdir()
        (base / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
        expected = "tokenizer.json only"
    else:
        base = tmp_path / "notes.model"
        base.write_text("this is a text file, not a model\n" * 20)
        expected = "notes.model: not a SentencePiece model"
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "merge", "--base", base, "--add", chinese_sp_model, "--output", out)
    assert code == 2 and stdout == ""
    assert expected in err and str(base.name) in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_merge_refuses_a_non_bpe_base_in_clean_mode(capsys, chinese_sp_model, tmp_path) -> None:
    code, _, err = run(capsys, "merge", "--base", chinese_sp_model, "--add", chinese_sp_model, "--output", tmp_path / "o")
    assert code == 2 and "must be a LLaMA-family BPE" in err and "chinese_sp.model" in err
    assert not (tmp_path / "o").exists()


def test_stats_prints_one_json_object_with_the_base_and_ratios(
    capsys, zh_tokenizer_dir, base_tokenizer_model, wiki_sample
) -> None:
    code, stdout, _ = run(
        capsys, "stats", "--tokenizer", zh_tokenizer_dir, "--base", base_tokenizer_model, "--input", wiki_sample,
        "--max_documents", "20",
    )
    assert code == 0
    stats = json.loads(stdout)
    keys = {
        "vocab_size", "documents", "chars", "cjk_chars", "tokens", "tokens_per_char", "tokens_per_cjk_char",
        "byte_fallback_share", "unk_share", "unreachable_pieces", "roundtrip_exact",
    }
    assert keys <= stats.keys() and keys <= stats["base"].keys()
    assert stats["documents"] == 20
    assert stats["ratio"]["tokens_per_cjk_char"] < 0.67  # measured 0.645 against Mistral (0.53 against LLaMA)


def test_stats_refuses_a_missing_input(capsys, zh_tokenizer_dir, tmp_path) -> None:
    code, _, err = run(capsys, "stats", "--tokenizer", zh_tokenizer_dir, "--input", tmp_path / "none.jsonl")
    assert code == 2 and "none.jsonl: input not found" in err


@pytest.mark.slow
def test_train_merge_stats_end_to_end_on_a_mistral_base(capsys, base_tokenizer_model, paragraph_sample, wiki_sample,
                                                         tmp_path) -> None:
    """The demo's flow: train a small Chinese model, merge it into Mistral's vocabulary, measure."""
    paragraphs = [json.loads(line)["text"] for line in paragraph_sample.read_text(encoding="utf-8").splitlines()]
    corpus = tmp_path / "paragraphs.txt"
    corpus.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    code, stdout, err = run(
        capsys, "train", "--input", corpus, "--output", tmp_path / "zh" / "chinese", "--vocab_size", "4000",
        "--character_coverage", "0.9995", "--num_threads", "2",
    )
    assert code == 0, err
    assert "read 200 documents" in err and json.loads(stdout)["read"]["documents"] == 200
    mistral = base_tokenizer_model
    code, stdout, err = run(
        capsys, "merge", "--base", mistral, "--add", tmp_path / "zh" / "chinese.model", "--output", tmp_path / "tok",
        "--pad_token", "[PAD]",
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["mode"] == "clean" and report["unreachable_added_pieces"] == 0 and report["pad_added"]
    code, stdout, err = run(
        capsys, "stats", "--tokenizer", tmp_path / "tok", "--base", mistral, "--input", wiki_sample,
        "--max_documents", "30",
    )
    assert code == 0, err
    stats = json.loads(stdout)
    assert stats["ratio"]["tokens"] < 0.9 and stats["unreachable_pieces"] == 0 and stats["roundtrip_exact"]


def test_subcommand_help(capsys) -> None:
    for command in ("train", "merge", "stats"):
        with pytest.raises(SystemExit) as exit_:
            main(["tokenizer", command, "--help"])
        assert exit_.value.code == 0
        assert f"zhllama tokenizer {command}" in capsys.readouterr().out


def test_merge_output_may_not_be_the_base_or_add_directory(capsys, base_tokenizer_model, chinese_sp_model,
                                                           tmp_path) -> None:
    base_dir = tmp_path / "mistral"
    base_dir.mkdir()
    (base_dir / "tokenizer.model").write_bytes(base_tokenizer_model.read_bytes())
    add_dir = tmp_path / "zh"
    add_dir.mkdir()
    (add_dir / "chinese_sp.model").write_bytes(chinese_sp_model.read_bytes())
    add = add_dir / "chinese_sp.model"
    for base, output in ((base_dir, base_dir), (base_dir / "tokenizer.model", base_dir), (base_dir, add_dir)):
        code, stdout, err = run(capsys, "merge", "--base", base, "--add", add, "--output", output)
        assert code == 2 and stdout == "" and err.count("\n") == 1
        assert f"{output.resolve()}: holds this command's input" in err
    assert (base_dir / "tokenizer.model").read_bytes() == base_tokenizer_model.read_bytes()
    assert sorted(p.name for p in base_dir.iterdir()) == ["tokenizer.model"]
    assert sorted(p.name for p in add_dir.iterdir()) == ["chinese_sp.model"]


@pytest.mark.parametrize("names", [["notes.txt"], ["tokenizer.model", "tokenizer_config.json", "merge_report.json"]])
def test_merge_refuses_a_directory_it_did_not_write(capsys, base_tokenizer_model, chinese_sp_model, tmp_path,
                                                   names) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_text("the user's")
    code, _, err = run(capsys, "merge", "--base", base_tokenizer_model, "--add", chinese_sp_model, "--output", out)
    assert code == 2 and "a non-empty directory that zhllama did not write" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all((out / name).read_text() == "the user's" for name in names)


def test_merge_replaces_its_own_output_and_restores_it_when_the_rename_fails(
    capsys, base_tokenizer_model, chinese_sp_model, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "tok"
    argv = ("merge", "--base", base_tokenizer_model, "--add", chinese_sp_model, "--output", out)
    assert run(capsys, *argv, "--mode", "anchor")[0] == 0
    assert json.loads((out / "zhllama_output.json").read_text())["kind"] == "tokenizer"
    anchor = (out / "tokenizer.model").read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out.resolve() and Path(src).name.endswith(".partial"):
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1
    assert (out / "tokenizer.model").read_bytes() == anchor
    assert json.loads((out / "merge_report.json").read_text())["mode"] == "anchor"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    monkeypatch.setattr(os, "replace", real_replace)
    assert run(capsys, *argv)[0] == 0  # a merge output of its own is replaced
    assert json.loads((out / "merge_report.json").read_text())["mode"] == "clean"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_stats_reads_a_txt_corpus_with_blank_lines(capsys, zh_tokenizer_dir, tmp_path) -> None:
    corpus = tmp_path / "news.txt"
    corpus.write_text("第一段新闻。\n\n第二段新闻。\n\n", encoding="utf-8")
    code, stdout, err = run(capsys, "stats", "--tokenizer", zh_tokenizer_dir, "--input", corpus)
    assert code == 0, err
    assert json.loads(stdout)["documents"] == 2
