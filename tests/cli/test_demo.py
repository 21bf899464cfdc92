"""``zhllama demo`` end to end, offline: the registry assets are swapped for the same kinds of files in shared data."""

import json

import pytest
from transformers import AutoTokenizer

from cli import demo
from datamodules import demo_assets


@pytest.mark.slow
def test_demo_runs_every_stage_and_each_lowers_the_validation_loss(shared_data, wiki_sample, tmp_path, monkeypatch,
                                                                    capsys) -> None:
    chapters = tmp_path / "chapters.json"
    texts = [json.loads(line)["text"] for line in wiki_sample.read_text(encoding="utf-8").splitlines()]
    chapters.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    stand_ins = {
        "mistral_tokenizer": shared_data / "tokenizers" / "mistral_v1" / "tokenizer.model",
        "sanguo": chapters,
        "alpaca_zh_demo": shared_data / "alpaca_zh" / "alpaca_zh_demo.json",
    }
    fake = lambda name, cache_dir=None: stand_ins[name]  # noqa: E731
    monkeypatch.setattr(demo, "asset_path", fake)
    monkeypatch.setattr(demo_assets, "asset_path", fake)

    work = tmp_path / "demo"
    assert demo.main(["--workdir", str(work), "--max-steps", "4"]) == 0  # 1: a loss did not drop
    out = capsys.readouterr().out
    summary = out[out.index("== summary") :]
    assert summary.count("val/loss") == 3 and "tokens per CJK character on held-out text" in summary
    exported = json.loads((work / "export" / "config.json").read_text())
    assert exported["vocab_size"] == len(AutoTokenizer.from_pretrained(work / "tokenizer"))
    assert (work / "runs" / "tiny" / "sft" / "checkpoints" / "last.ckpt").is_file()
