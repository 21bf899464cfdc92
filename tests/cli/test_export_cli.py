"""End to end on a tiny model: SFT fit (LoRA + embeddings) on real Alpaca data -> `zhllama export` -> generate."""

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from cli.export import main as export_main
from cli.generate import main as generate_main
from datamodules.alpaca_sft import AlpacaSFTDataModule
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import tiny_llama_config


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
def sft_run(zh_tokenizer_dir: Path, alpaca_dir: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=32000))).save_pretrained(root / "base")
    datamodule = AlpacaSFTDataModule(
        str(zh_tokenizer_dir), str(alpaca_dir / "alpaca_data_zh_51k_edgecases.json"), max_seq_length=96, batch_size=4,
        val_examples=3,
    )
    ckpt, module = fit(root, datamodule, pretrained=str(root / "base"), tokenizer=str(zh_tokenizer_dir))
    [position] = torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
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


def test_export_adapter_names_its_base(sft_run, tmp_path: Path):
    root, ckpt, _ = sft_run
    out = tmp_path / "adapter"
    assert export_main(["--ckpt", str(ckpt), "--output", str(out), "--adapter"]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((root / "base").resolve())
    assert (out / "tokenizer_config.json").is_file()


def test_refusals_are_one_clear_line(sft_run, tmp_path: Path, capsys):
    _, ckpt, _ = sft_run
    assert export_main(["--ckpt", str(tmp_path / "none.ckpt"), "--output", str(tmp_path / "o")]) == 1
    assert "none.ckpt: no such checkpoint" in capsys.readouterr().err
    checkpoint = torch.load(ckpt, weights_only=False)  # the same run, as if started from a random init
    checkpoint["hyper_parameters"].update(pretrained=None, model_config=tiny_llama_config(vocab_size=32000))
    torch.save(checkpoint, tmp_path / "random_init.ckpt")
    assert export_main(["--ckpt", str(tmp_path / "random_init.ckpt"), "--output", str(tmp_path / "a"), "--adapter"]) == 1
    assert "needs a base model directory" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / ".a.partial").exists()
