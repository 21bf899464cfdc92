"""``zhllama tokenizer train --kind bpe | merge | stats`` on byte-level bases, through the console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from datamodules.demo_assets import asset_path
from tests.cli.console import console
from tests.tokenization.byte_level_bases import write_toy_base


def zhllama(*argv: object) -> subprocess.CompletedProcess:
    return console("tokenizer", *argv)


@pytest.fixture(scope="module")
def toy_base(english_prose: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_base(tmp_path_factory.mktemp("toy") / "base", english_prose)


def test_train_merge_stats_on_a_byte_level_base(toy_base: Path, wiki_sample: Path, tmp_path: Path) -> None:
    done = zhllama(
        "train", "--kind", "bpe", "--base", toy_base, "--input", wiki_sample, "--output", tmp_path / "zh" / "zh.json",
        "--vocab_size", 300,
    )
    assert done.returncode == 0, done.stderr
    trained = json.loads(done.stdout)
    assert trained["learned_merges"] == 300 and trained["documents"] == 30
    done = zhllama("merge", "--base", toy_base, "--add", tmp_path / "zh" / "zh.json", "--output", tmp_path / "tok")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added_tokens"] + report["dropped_unreachable"] == 300
    assert {p.name for p in (tmp_path / "tok").iterdir()} >= {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "merge_report.json", "zhllama_output.json"
    }
    done = zhllama("stats", "--tokenizer", tmp_path / "tok", "--base", toy_base, "--input", wiki_sample)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["vocab_size"] == report["vocab_size"] and stats["roundtrip_exact"]
    assert stats["ratio"]["tokens_per_cjk_char"] < 0.8
    assert stats["unreachable_pieces"] == stats["base"]["unreachable_pieces"]  # the new tokens add none


def test_refusals_are_one_line_naming_the_option_or_file(toy_base: Path, wiki_sample: Path, tmp_path: Path) -> None:
    done = zhllama("train", "--kind", "bpe", "--input", wiki_sample, "--output", tmp_path / "zh.json")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "--kind bpe needs --base" in done.stderr
    notes = tmp_path / "notes.json"
    notes.write_text("plain text\n")
    done = zhllama("train", "--kind", "bpe", "--base", notes, "--input", wiki_sample, "--output", tmp_path / "zh.json")
    assert done.returncode == 2 and "notes.json: not a tokenizer.json" in done.stderr
    done = zhllama("merge", "--base", toy_base, "--add", notes, "--output", tmp_path / "tok", "--mode", "anchor")
    assert done.returncode == 2 and "--mode anchor and --pad_token are for SentencePiece bases" in done.stderr
    done = zhllama("merge", "--base", toy_base, "--add", notes, "--output", tmp_path / "tok")
    assert done.returncode == 2 and "notes.json: not a `tokenizer train --kind bpe` output" in done.stderr
    done = zhllama("train", "--kind", "bpe", "--base", toy_base, "--input", wiki_sample, "--output", tmp_path / "zh.json",
                   "--character_coverage", "0.99", "--seed", "7")
    assert done.returncode == 2 and "--character_coverage, --seed: only for --kind sentencepiece" in done.stderr
    done = zhllama("train", "--input", wiki_sample, "--output", tmp_path / "zh", "--min_frequency", "5")
    assert done.returncode == 2 and "--min_frequency: only for --kind bpe, not --kind sentencepiece" in done.stderr
    assert not (tmp_path / "zh.json").exists() and not (tmp_path / "tok").exists()


@pytest.mark.demo_assets
def test_stats_reads_a_gguf(wiki_sample: Path) -> None:
    gguf = asset_path("smollm2_gguf")
    done = zhllama("stats", "--tokenizer", gguf, "--input", wiki_sample, "--max_documents", 5)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["vocab_size"] == 49152 and stats["roundtrip_exact"] and stats["tokens_per_cjk_char"] > 1.5
