"""``zhllama data prepare``: flags or a config's ``data:`` section in, one JSON report out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from cli.data import main
from cli.main import main as cli_main
from datamodules import token_cache
from datamodules.token_cache import TOKENS_FILE
from tests.cli.console import console


REPORT_KEYS = {
    "documents",
    "train_documents",
    "val_documents",
    "skipped",
    "encoded_by",
    "tokens",
    "train_blocks",
    "val_blocks",
    "dropped_tail_tokens",
    "seconds",
    "docs_per_s",
    "cache_path",
}


@pytest.fixture
def corpus(wiki_sample: Path, tmp_path: Path) -> Path:
    path = tmp_path / "corpus" / "wiki.jsonl"
    path.parent.mkdir()
    path.write_text("".join(wiki_sample.read_text(encoding="utf-8").splitlines(keepends=True)[:4]), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, dict | None, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_flags_build_then_reuse(capsys, zh_tokenizer_dir, corpus, tmp_path) -> None:
    argv = ["prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(corpus.parent), "--block_size", "128",
            "--cache_dir", str(tmp_path / "cache"), "--val_documents", "1", "--num_proc", "1"]
    code, report, _ = run(capsys, argv)
    assert code == 0 and set(report) == REPORT_KEYS
    assert report["documents"] == 4 and report["train_documents"] == 3 and report["val_documents"] == 1
    assert report["train_blocks"] > 0 and report["skipped"]["total"] == 0
    assert Path(report["cache_path"]).parent == tmp_path / "cache"
    code, again, err = run(capsys, argv)
    assert code == 0 and "reused" in err
    volatile = ("seconds", "docs_per_s")
    assert {k: v for k, v in again.items() if k not in volatile} == {k: v for k, v in report.items() if k not in volatile}


@pytest.mark.parametrize("lightning_style", [True, False])
def test_config_data_section_with_flag_override(capsys, zh_tokenizer_dir, corpus, tmp_path, lightning_style) -> None:
    init_args = {"tokenizer": str(zh_tokenizer_dir), "inputs": [str(corpus)], "block_size": 64,
                 "cache_dir": str(tmp_path / "cache"), "num_proc": 1, "val_fraction": 0.0}
    data = {"class_path": "datamodules.wiki_blocks.WikiBlocksDataModule", "init_args": init_args} if lightning_style \
        else init_args
    config = tmp_path / "stage1.yaml"
    config.write_text(yaml.safe_dump({"trainer": {"max_steps": 10}, "model": {"x": 1}, "data": data}))
    code, report, _ = run(capsys, ["prepare", "--config", str(config), "--block_size", "256"])
    assert code == 0 and report["val_documents"] == 0
    assert report["train_blocks"] == report["tokens"] // 256  # the flag won over the config's 64


def test_bad_record_and_bad_config_fail_clearly(capsys, zh_tokenizer_dir, tmp_path) -> None:
    def zhllama_data(argv: list[str]) -> tuple[int, str, str]:
        code = cli_main(["data", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": 1}\n', encoding="utf-8")
    base = ["prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(bad), "--cache_dir", str(tmp_path / "c"),
            "--num_proc", "1", "--val_fraction", "0"]
    code, _, err = zhllama_data(base)
    assert code == 2 and err.startswith(f"zhllama data prepare: {bad.resolve()}:2:") and "--on_bad_record skip" in err
    assert err.count("\n") == 1
    code, out, _ = zhllama_data([*base, "--on_bad_record", "skip"])
    report = json.loads(out)
    assert code == 0 and report["skipped"]["by_reason"]["non_string_text"] == 1 and report["documents"] == 1
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"tokenizer": "x", "inputs": "y", "blocksize": 3}}))
    code, _, err = zhllama_data(["prepare", "--config", str(config)])
    assert code == 2 and "blocksize" in err
    config.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.alpaca_sft.AlpacaSFTDataModule"}}))
    code, _, err = zhllama_data(["prepare", "--config", str(config)])
    assert code == 2 and "class_path" in err
    assert main(["frobnicate"]) == 2

def test_a_truncated_or_fake_gzip_is_one_line_exit_2_or_a_skipped_file(capsys, zh_tokenizer_dir, tmp_path) -> None:
    data = "".join(json.dumps({"text": f"第{i}篇：中华人民共和国" * 40}, ensure_ascii=False) + "\n" for i in range(300))
    packed = gzip.compress(data.encode("utf-8"))
    truncated = tmp_path / "in" / "wiki_00.jsonl.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(packed[: len(packed) // 2])
    argv = ["data", "prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(truncated),
            "--cache_dir", str(tmp_path / "cache"), "--num_proc", "1", "--val_fraction", "0"]
    result = console(*argv)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"zhllama data prepare: {truncated.resolve()}: unreadable from line ")
    assert "truncated" in result.stderr and "--on_bad_record skip" in result.stderr
    assert not list((tmp_path / "cache").iterdir())

    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text('{"text": "不是 gzip"}\n', encoding="utf-8")
    assert cli_main([*argv[:5], str(fake), *argv[6:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"zhllama data prepare: {fake.resolve()}: unreadable from line 1: not a valid gzip file")

    assert cli_main([*argv, "--on_bad_record", "skip"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"]["by_reason"]["unreadable_file"] == 1 and report["skipped"]["total"] == 1
    assert 0 < report["documents"] < 300


def test_blank_lines_of_a_txt_corpus_are_separators(zh_tokenizer_dir, tmp_path) -> None:
    corpus = tmp_path / "news.txt"
    corpus.write_text("第一段新闻。\n\n第二段新闻。\n   \n\n第三段新闻。\n", encoding="utf-8")
    result = console("data", "prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(corpus),
                     "--cache_dir", str(tmp_path / "cache"), "--num_proc", "1", "--val_fraction", "0")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["documents"] == 3 and report["skipped"]["total"] == 0


def test_changing_block_size_reuses_the_tokens(capsys, zh_tokenizer_dir, corpus, tmp_path) -> None:
    argv = ["prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(corpus), "--cache_dir",
            str(tmp_path / "cache"), "--num_proc", "1", "--val_fraction", "0"]
    code, short, _ = run(capsys, [*argv, "--block_size", "64"])
    assert code == 0
    code, long, err = run(capsys, [*argv, "--block_size", "128"])
    assert code == 0 and "reused" in err and long["cache_path"] == short["cache_path"]
    assert long["train_blocks"] == long["tokens"] // 128 and short["train_blocks"] == short["tokens"] // 64


def test_a_full_disk_is_one_line_and_leaves_no_partial_entry(capsys, zh_tokenizer_dir, corpus, tmp_path,
                                                             monkeypatch) -> None:
    real_open = open

    def tokens_on_a_full_disk(path, mode="r", *args, **kwargs):
        if Path(path).name == TOKENS_FILE:
            return real_open("/dev/full", mode, *args, **kwargs)  # flushes and the close raise ENOSPC
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(token_cache, "open", tokens_on_a_full_disk, raising=False)
    cache = tmp_path / "cache"
    code = cli_main(["data", "prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(corpus),
                     "--cache_dir", str(cache), "--num_proc", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"zhllama data prepare: {cache}: no space left") and "free space" in err
    assert list(cache.iterdir()) == []
