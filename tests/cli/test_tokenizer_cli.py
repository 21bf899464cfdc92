"""``zhllama tokenizer train | merge | stats`` as a user runs them."""

from __future__ import annotations

import hashlib
import json

import pytest

from cli.main import main

EXPECTED_ALPACA_SHA256 = "2d967e855b1213a439df6c8ce2791f869c84b4f3b6cfacf22b86440b8192a2f8"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tokenizer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_merge_anchor_with_pad_reproduces_chinese_alpaca(
    capsys, llama_tokenizer_model, chinese_sp_model, shared_data, tmp_path
) -> None:
    out = tmp_path / "alpaca"
    code, stdout, _ = run(
        capsys, "merge", "--base", llama_tokenizer_model, "--add", chinese_sp_model, "--output", out,
        "--mode", "anchor", "--pad-token", "[PAD]",
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
    capsys, zh_tokenizer_dir, llama_tokenizer_model, wiki_sample
) -> None:
    code, stdout, _ = run(
        capsys, "stats", "--tokenizer", zh_tokenizer_dir, "--base", llama_tokenizer_model, "--input", wiki_sample,
        "--max-documents", "20",
    )
    assert code == 0
    stats = json.loads(stdout)
    keys = {
        "vocab_size", "documents", "chars", "cjk_chars", "tokens", "tokens_per_char", "tokens_per_cjk_char",
        "byte_fallback_share", "unk_share", "unreachable_pieces", "roundtrip_exact",
    }
    assert keys <= stats.keys() and keys <= stats["base"].keys()
    assert stats["documents"] == 20
    assert stats["ratio"]["tokens_per_cjk_char"] < 0.6


def test_stats_refuses_a_missing_input(capsys, zh_tokenizer_dir, tmp_path) -> None:
    code, _, err = run(capsys, "stats", "--tokenizer", zh_tokenizer_dir, "--input", tmp_path / "none.jsonl")
    assert code == 2 and "none.jsonl: input not found" in err


@pytest.mark.slow
def test_train_merge_stats_end_to_end_on_a_mistral_base(capsys, shared_data, tmp_path) -> None:
    """The demo's flow: train a small Chinese model, merge it into Mistral's vocabulary, measure."""
    news = (shared_data / "news" / "peoples_daily_199801_part00.txt").read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "news.txt"
    corpus.write_text("\n".join(news[:1000]) + "\n", encoding="utf-8")
    code, stdout, err = run(
        capsys, "train", "--input", corpus, "--output", tmp_path / "zh" / "chinese", "--vocab-size", "3000",
        "--character-coverage", "0.9995", "--num-threads", "2",
    )
    assert code == 0, err
    assert "read 1000 documents" in err and json.loads(stdout)["read"]["documents"] == 1000
    mistral = shared_data / "tokenizers" / "mistral_v1" / "tokenizer.model"
    code, stdout, err = run(
        capsys, "merge", "--base", mistral, "--add", tmp_path / "zh" / "chinese.model", "--output", tmp_path / "tok",
        "--pad-token", "[PAD]",
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["mode"] == "clean" and report["unreachable_added_pieces"] == 0 and report["pad_added"]
    code, stdout, err = run(
        capsys, "stats", "--tokenizer", tmp_path / "tok", "--base", mistral, "--input", shared_data / "zhwiki",
        "--max-documents", "30",
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
