"""End to end on a tiny model: SFT fit (LoRA + embeddings) on real Alpaca data -> `zhllama export` -> generate;
export refusals through `cli.main.main`, the code the console script runs."""

import json
import os
import shutil
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from cli.export import main as export_main
from cli.generate import main as generate_main
from datamodules.alpaca_sft import AlpacaSFTDataModule
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import tiny_llama_config
from tests.cli.console import console, in_process



def fit(root: Path, datamodule: AlpacaSFTDataModule, **module_args) -> tuple[Path, CausalLMModule]:
    module = CausalLMModule(learning_rate=1e-2, warmup_steps=0, **module_args)
    trainer = pl.Trainer(
        default_root_dir=root, accelerator="cpu", devices=1, max_steps=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[LoRAWithEmbeddings(r=4, alpha=8)],
    )
    trainer.fit(module, datamodule=datamodule)
    assert torch.isfinite(trainer.callback_metrics["val/loss"])  # no label-less example makes it NaN
    ckpt = root / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    return ckpt, module.eval()


@pytest.fixture(scope="module")
def sft_run(zh_tokenizer_dir: Path, alpaca_sample: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=32000))).save_pretrained(root / "base")
    records = root / "alpaca.json"
    records.write_text(json.dumps(json.loads(alpaca_sample.read_text(encoding="utf-8"))[:11], ensure_ascii=False),
                       encoding="utf-8")
    datamodule = AlpacaSFTDataModule(
        str(zh_tokenizer_dir), str(records), max_seq_length=96, batch_size=4, val_examples=3
    )
    ckpt, module = fit(root, datamodule, pretrained=str(root / "base"), tokenizer=str(zh_tokenizer_dir))
    [position] = torch.load(ckpt, weights_only=True)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    # 8 training examples, batches of 4: after 2 steps the saved position is the start of epoch 1
    assert (position["epoch"], position["batches_consumed"], position["group_batches"]) == (1, 0, 64)
    return root, ckpt, module


def test_export_then_generate(sft_run, tmp_path: Path, capsys):
    _, ckpt, module = sft_run
    out = tmp_path / "model"
    assert export_main(["--ckpt", str(ckpt), "--output", str(out), "--dtype", "fp32"]) == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([tokenizer("确定秘鲁的首都。")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, module.model(input_ids=ids).logits, atol=1e-4)
    assert json.loads((out / "zhllama_export.json").read_text())["vocab_size"] == len(tokenizer)
    capsys.readouterr()
    assert generate_main(["--model", str(out), "--prompt", "确定秘鲁的首都。", "--max_new_tokens", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")


def test_adapter_export_from_another_working_directory(sft_run, tmp_path: Path):
    root, ckpt, module = sft_run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = console("export", "--ckpt", os.path.relpath(ckpt, elsewhere), "--output", "adapter", "--adapter",
                     "--dtype", "fp32", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    out = elsewhere / "adapter"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(out / "base")
    assert (out / "tokenizer_config.json").is_file() and (out / "base" / "tokenizer_config.json").is_file()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(out / "base"), out).eval()
    ids = torch.tensor([AutoTokenizer.from_pretrained(out)("确定秘鲁的首都。")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, module.model(input_ids=ids).logits, atol=1e-4)


def test_refusals_are_one_line_exit_2(sft_run, tmp_path: Path):
    root, ckpt, _ = sft_run
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["zhllama"]["base"]["pretrained"] = str(tmp_path / "gone")
    torch.save(checkpoint, tmp_path / "no_base.ckpt")
    other_base = tmp_path / "other_base"
    shutil.copytree(root / "base", other_base)
    config = json.loads((other_base / "config.json").read_text())
    (other_base / "config.json").write_text(json.dumps({**config, "rope_theta": 500000.0}))
    cases = {
        (str(truncated),): "truncated.ckpt: not a complete checkpoint",
        (str(text),): "notes.ckpt: not a complete checkpoint",
        (str(tmp_path / "no_base.ckpt"),): f"base model {tmp_path / 'gone'} is missing",
        (str(ckpt), "--base", str(other_base)): "is not the one this checkpoint was built on (config.json rope_theta",
    }
    for (source, *extra), expected in cases.items():
        result = in_process("export", "--ckpt", source, "--output", str(tmp_path / "out"), *extra, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("zhllama export: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
