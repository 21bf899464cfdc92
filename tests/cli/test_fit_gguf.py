"""A real pretrained model as the base, through the console script: stage 1 fits on SmolLM2-135M-Instruct from its
GGUF (model and tokenizer from the one file), its checkpoint exports with only the .gguf present (moved, named
with ``--base``; another file of the same name refused, both refusals through ``cli.main.main`` in this process),
and ``zhllama eval`` scores the export. One test: the GGUF takes about a minute to load on two cores, and the
fit and the export each load it once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from datamodules.demo_assets import asset_path
from tests.cli.console import console, in_process
from tests.cli.tiny_fit import CONFIGS, small_corpus

ENGLISH = ("The Python standard library is very extensive, offering a wide range of facilities. It contains built-in "
           "modules that provide access to system functionality such as file input and output.")


def flip_first_weight_byte(gguf: Path) -> None:
    """Another model of the same name, size and header: one byte of the tensor data changed."""
    from gguf import GGUFReader

    offset = int(GGUFReader(str(gguf)).data_offset)
    with open(gguf, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.slow
@pytest.mark.demo_assets
def test_stage_one_on_a_gguf_base_exports_with_only_the_gguf_and_evaluates(wiki_sample: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    shutil.copyfile(asset_path("smollm2_gguf"), gguf)
    corpus = small_corpus(wiki_sample, tmp_path / "data")
    run = tmp_path / "run"
    fit = console(
        "fit", "--config", CONFIGS / "pt_embed.yaml", "--model.model_config", "null", "--model.pretrained", gguf,
        "--data.init_args.tokenizer", gguf, "--data.init_args.inputs", corpus,
        "--data.init_args.cache_dir", tmp_path / "cache", "--data.init_args.block_size", "32",
        "--data.init_args.batch_size", "1", "--data.init_args.val_documents", "1", "--data.init_args.num_proc", "1",
        "--trainer.default_root_dir", run, "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
        "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0", "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    record = checkpoint["zhllama"]
    assert record["base"]["pretrained"] == str(gguf) and gguf.name in record["base"]["fingerprint"]["weights"]
    assert record["tokenizer"]["path"] == str(gguf) and "tokenizer.json" in record["tokenizer"]["files"]
    assert record["vocab_size"] == 49152 and list(checkpoint["state_dict"]) == ["model.model.embed_tokens.weight"]

    moved = tmp_path / "elsewhere" / gguf.name
    moved.parent.mkdir()
    gguf.rename(moved)  # the run's base is gone from where it trained; the checkpoint names it by fingerprint
    out = tmp_path / "export"
    missing = in_process("export", "--ckpt", run, "--output", out, "--dtype", "fp32")
    assert missing.returncode == 2 and f"base model {gguf} is missing" in missing.stderr
    impostor = tmp_path / "impostor" / gguf.name
    impostor.parent.mkdir()
    shutil.copyfile(moved, impostor)
    flip_first_weight_byte(impostor)
    refused = in_process("export", "--ckpt", run, "--output", out, "--dtype", "fp32", "--base", impostor)
    assert refused.returncode == 2 and "sampled tensor data differs" in refused.stderr, refused.stderr[-2000:]

    exported = console("export", "--ckpt", run, "--output", out, "--dtype", "fp32", "--base", moved)
    assert exported.returncode == 0, exported.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == 49152 and config["tie_word_embeddings"]
    assert (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()
    trained = checkpoint["state_dict"]["model.model.embed_tokens.weight"]
    assert torch.equal(load_file(out / "model.safetensors")["model.embed_tokens.weight"], trained)

    english = tmp_path / "en.txt"
    english.write_text(ENGLISH + "\n", encoding="utf-8")
    scored = console("eval", "--model", out, "--input", english, "--window", "64", "--stride", "32", "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    total = json.loads(scored.stdout.splitlines()[-1])
    assert total["documents"] == 1 and 0 < total["bits_per_byte"] < 2.0  # still SmolLM2, reading its own tokens
