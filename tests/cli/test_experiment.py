"""``zhllama experiment`` end to end on a tiny random-init model with a toy byte-level tokenizer, and its parts."""

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cli import experiment
from cli.experiment_data import lead, split_wikipedia
from lightning_modules.model_loading import tiny_llama_config
from tests.tokenization.byte_level_bases import write_toy_base
from tokenization.pretrained_tokenizer import load_tokenizer


def test_lead_cuts_at_the_last_sentence_end_before_the_limit() -> None:
    text = "第一句话。第二句话！第三句话很长很长很长。"
    assert lead(text, 12) == "第一句话。第二句话！"
    assert lead(text, 100) == text
    assert lead("没有句号的一段很长的文字" * 3, 8) == "没有句号的一段很"  # no sentence end in reach: a hard cut


def test_heldout_articles_are_never_training_text(wiki_sample: Path, tmp_path: Path) -> None:
    text = split_wikipedia(wiki_sample, tmp_path, heldout_articles=4, heldout_chars=200, english_paragraphs=3)
    train = [json.loads(line) for line in text.wiki_train.read_text(encoding="utf-8").splitlines()]
    heldout = [json.loads(line) for line in text.heldout_zh.read_text(encoding="utf-8").splitlines()]
    assert len(heldout) == 4 and len(train) == 26 and {a["id"] for a in heldout}.isdisjoint(a["id"] for a in train)
    assert all(len(a["text"]) <= 200 for a in heldout) and [a["title"] for a in heldout] == text.heldout_titles
    assert len(text.english.read_text(encoding="utf-8").splitlines()) == 3
    again = split_wikipedia(wiki_sample, tmp_path / "again", heldout_articles=4, heldout_chars=200,
                            english_paragraphs=3)
    assert again.heldout_titles == text.heldout_titles  # seeded: the same split every run


def test_clock_is_lightning_max_time_format() -> None:
    assert experiment.clock(90061.7) == "01:01:01:01"


@pytest.mark.slow
def test_experiment_runs_every_step_and_arm_and_a_rerun_skips_them(
    wiki_sample: Path, alpaca_sample: Path, english_prose: list[str], tmp_path: Path, monkeypatch, capsys
) -> None:
    base = write_toy_base(tmp_path / "base", english_prose)
    tokenizer_config = json.loads((base / "tokenizer_config.json").read_text())
    tokenizer_config["bos_token"] = tokenizer_config["eos_token"]  # pretraining frames documents BOS ... EOS
    (base / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    config = LlamaConfig(**tiny_llama_config(vocab_size=len(load_tokenizer(base)), max_position_embeddings=512))
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(base)
    chapters = tmp_path / "chapters.json"
    texts = [json.loads(line)["text"] for line in wiki_sample.read_text(encoding="utf-8").splitlines()][:3]
    chapters.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    stand_ins = {"sanguo": chapters, "alpaca_zh_demo": alpaca_sample}
    monkeypatch.setattr(experiment, "asset_path", lambda name, cache_dir=None: stand_ins[name])
    monkeypatch.setattr("datamodules.demo_assets.asset_path", lambda name, cache_dir=None: stand_ins[name])
    work, report = tmp_path / "work", tmp_path / "docs" / "smollm2.md"
    argv = ["--workdir", str(work), "--report", str(report), "--base", str(base), "--wiki", str(wiki_sample),
            "--extra_text", "--extra_sft", "--stage1_steps", "2", "--stage2_steps", "2", "--sft_steps", "2",
            "--batch_size", "2", "--new_tokens", "200", "--heldout_articles", "2", "--heldout_chars", "150",
            "--english_paragraphs", "3", "--generate_tokens", "4"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert experiment.main(argv) == 0

    results = json.loads((work / "results.json").read_text(encoding="utf-8"))
    evaluated = ["base", "extended_mean", "extended_subtoken_mean", "stage1_mean", "stage1_subtoken_mean", "stage2",
                 "sft", "stage2_without_stage1", "no_extension"]
    for key in evaluated:
        assert results[key]["eval"]["zh"]["bits_per_char"] > 0 and results[key]["eval"]["en"]["documents"] == 3
    extension = results["extension"]
    assert extension["vocab_size"] == len(load_tokenizer(base)) + 200
    assert extension["tokens_per_char"] < extension["base_tokens_per_char"]
    zh_tokens = {key: results[key]["eval"]["zh"]["tokens_per_char"] for key in evaluated}
    assert zh_tokens["no_extension"] == zh_tokens["base"] > zh_tokens["stage2"] == zh_tokens["stage2_without_stage1"]
    assert results["stage2_without_stage1"]["steps"] == 4 and results["stage2_without_stage1"]["tokens"] == 4 * 2 * 512
    arm = results["no_extension"]
    assert 0 < arm["steps"] <= arm["planned_steps"] and arm["budget_seconds"] > 0
    assert len(results["generations"]["before"]) == len(results["generations"]["after"]) == 5
    assert any(line.startswith("zhllama fit --config") and "pt_lora_no_extension" in line
               for line in results["commands"])
    text = report.read_text(encoding="utf-8")
    assert text.count("\n| ") == 2 + len(evaluated) and "Is stage 1 worth it?" in text and "请介绍一下北京。" in text
    assert report.with_suffix(".png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert list(elsewhere.iterdir()) == []

    capsys.readouterr()
    assert experiment.main(argv) == 0  # every step recorded: nothing trains or evaluates again
    assert "$ zhllama" not in capsys.readouterr().out
