"""``zhllama data prepare``: flags or a config's ``data:`` section in, one JSON report out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli.data import main

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
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": 1}\n', encoding="utf-8")
    base = ["prepare", "--tokenizer", str(zh_tokenizer_dir), "--inputs", str(bad), "--cache_dir", str(tmp_path / "c"),
            "--num_proc", "1", "--val_fraction", "0"]
    code, _, err = run(capsys, base)
    assert code == 1 and f"{bad.resolve()}:2:" in err and "--on_bad_record skip" in err
    code, report, _ = run(capsys, [*base, "--on_bad_record", "skip"])
    assert code == 0 and report["skipped"]["by_reason"]["non_string_text"] == 1 and report["documents"] == 1
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"tokenizer": "x", "inputs": "y", "blocksize": 3}}))
    code, _, err = run(capsys, ["prepare", "--config", str(config)])
    assert code == 2 and "blocksize" in err
    config.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.alpaca_sft.AlpacaSFTDataModule"}}))
    code, _, err = run(capsys, ["prepare", "--config", str(config)])
    assert code == 2 and "class_path" in err
    assert main(["frobnicate"]) == 2
