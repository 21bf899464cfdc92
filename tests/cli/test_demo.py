"""``zhllama demo`` end to end, offline: the registry assets are swapped for the same kinds of files in tests/assets."""

import json

import pytest
from transformers import AutoTokenizer

from cli import demo
from datamodules import demo_assets


@pytest.mark.slow
def test_demo_runs_every_stage_and_each_lowers_the_validation_loss(base_tokenizer_model, wiki_sample, alpaca_sample,
                                                                    tmp_path, monkeypatch, capsys) -> None:
    chapters = tmp_path / "chapters.json"
    texts = [json.loads(line)["text"] for line in wiki_sample.read_text(encoding="utf-8").splitlines()]
    chapters.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    stand_ins = {
        "mistral_tokenizer": base_tokenizer_model,
        "sanguo": chapters,
        "alpaca_zh_demo": alpaca_sample,
    }
    fake = lambda name, cache_dir=None: stand_ins[name]  # noqa: E731
    monkeypatch.setattr(demo, "asset_path", fake)
    monkeypatch.setattr(demo_assets, "asset_path", fake)

    work, elsewhere = tmp_path / "demo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # every output goes under --workdir, none relative to the working directory
    assert demo.main(["--workdir", str(work), "--max_steps", "4"]) == 0  # 1: a loss did not drop
    out = capsys.readouterr().out
    summary = out[out.index("== summary") :]
    assert summary.count("val/loss") == 3 and "tokens per CJK character on held-out text" in summary
    exported = json.loads((work / "export" / "config.json").read_text())
    assert exported["vocab_size"] == len(AutoTokenizer.from_pretrained(work / "tokenizer"))
    assert (work / "runs" / "tiny" / "sft" / "checkpoints" / "last.ckpt").is_file()
    assert (work / "runs" / "tiny" / "sft" / "tensorboard" / "version_0" / "config.yaml").is_file()
    assert (work / "report.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")  # bits per byte by stage, tok/char
    assert list(elsewhere.iterdir()) == []
