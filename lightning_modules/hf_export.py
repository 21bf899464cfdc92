"""Checkpoint -> a model anyone can load: a standalone Hugging Face directory, or a PEFT adapter directory.

The module is rebuilt by :func:`lightning_modules.checkpoint_io.restore_module` (the one restore path). Before
anything heavy is loaded the checkpoint is checked against what it names -- the base model, the tokenizer --
so a moved base or a re-merged tokenizer is refused with the fix, instead of failing deep inside
``load_state_dict`` or, worse, exporting a model whose embedding rows mean other tokens. Outputs are written
beside the destination and renamed into place, so an interrupted export never leaves a half-written model
where a loader would pick it up.

Two refusals exist because the anchor shipped their failure modes: an adapter directory holding no LoRA or
embedding weights (its "443-byte adapter_model.bin", written under DeepSpeed ZeRO with partitioned
parameters), and ``config.vocab_size`` disagreeing with the tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoTokenizer, PreTrainedModel

from datamodules.sft_batching import pad_token_id
from lightning_modules.causal_lm import CHECKPOINT_KEY, CausalLMModule
from lightning_modules.checkpoint_io import restore_module
from lightning_modules.generation import DTYPES

Dtype = Literal["bf16", "fp16", "fp32"]
EMBEDDING_NAMES = ("embed_tokens", "lm_head")
SENTENCEPIECE_FILE = "tokenizer.model"


class ExportError(ValueError):
    """The checkpoint cannot be exported as asked; the message says why and what to do."""


def _load_tokenizer(path: str | os.PathLike):
    if not (Path(path) / "tokenizer_config.json").is_file():
        raise ExportError(
            f"tokenizer directory {path} is missing (no tokenizer_config.json); restore it or pass --tokenizer DIR"
        )
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def check_checkpoint(ckpt: str | os.PathLike, tokenizer_dir: str | None = None):
    """Checks a ``zhllama fit`` checkpoint's base, tokenizer and vocabulary; returns (dir, tokenizer) to export.

    A Hugging Face directory (an earlier export) is checked for its tokenizer only.
    """
    path = Path(ckpt)
    if path.is_dir():
        tokenizer_dir = tokenizer_dir or str(path)
        return tokenizer_dir, _load_tokenizer(tokenizer_dir)
    if not path.is_file():
        raise ExportError(f"{path}: no such checkpoint file or model directory")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    hparams = checkpoint.get("hyper_parameters")
    if hparams is None or CHECKPOINT_KEY not in checkpoint:
        raise ExportError(f"{path}: not a checkpoint written by `zhllama fit` (no hyper-parameters / zhllama record)")
    for key in ("pretrained", "init_from"):
        base = hparams.get(key)
        if base is not None and not Path(base).exists():
            raise ExportError(
                f"{path}: its base model `{key}: {base}` is missing; put it back at that path (relative paths are "
                "resolved from the current directory) and export again"
            )
    trained_with = hparams.get("tokenizer")
    if tokenizer_dir and trained_with and Path(tokenizer_dir).resolve() != Path(trained_with).resolve():
        raise ExportError(
            f"{path}: trained with the tokenizer {trained_with}, not {tokenizer_dir}; drop --tokenizer"
        )
    tokenizer_dir = tokenizer_dir or trained_with or _base_tokenizer_dir(hparams)
    if tokenizer_dir is None:
        raise ExportError(
            f"{path}: the checkpoint names no tokenizer and its base has none; pass --tokenizer DIR (the tokenizer "
            "the model was trained with)"
        )
    tokenizer = _load_tokenizer(tokenizer_dir)
    for name, tensor in checkpoint["state_dict"].items():
        if name.endswith(tuple(f"{n}.weight" for n in EMBEDDING_NAMES)) and tensor.shape[0] != len(tokenizer):
            raise ExportError(
                f"{path}: vocabulary mismatch: {name} has {tensor.shape[0]} rows but the tokenizer {tokenizer_dir} "
                f"has {len(tokenizer)} tokens; export with the tokenizer the checkpoint was trained with"
            )
    return str(tokenizer_dir), tokenizer


def _base_tokenizer_dir(hparams: dict) -> str | None:
    base = hparams.get("pretrained") or hparams.get("init_from")
    if base and (Path(base) / "tokenizer_config.json").is_file():
        return str(base)
    return None


def _adapter_base(module: CausalLMModule) -> str:
    """The HF directory a PEFT adapter applies to: the module's ``pretrained`` (or ``init_from`` directory)."""
    hp = module.hparams
    for base in (hp.get("pretrained"), hp.get("init_from")):
        if base is not None and (Path(base) / "config.json").is_file():
            return str(Path(base).resolve())
    origin = f"the checkpoint {hp.get('init_from')}" if hp.get("init_from") else "a random init (model_config)"
    raise ExportError(
        f"an adapter needs a base model directory to apply to, but this model starts from {origin}; export the "
        "full model (drop --adapter), or export that stage as a Hugging Face directory and train from it"
    )


def _write_aside(output: Path, overwrite: bool) -> Path:
    if output.is_file():
        raise ExportError(f"{output} is a file; --output names a directory")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ExportError(f"{output} exists and is not empty; choose another --output or pass --overwrite")
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def _move_into_place(partial: Path, output: Path) -> None:
    if output.exists():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
        partial.rename(output)
        shutil.rmtree(old)
    else:
        partial.rename(output)


def _save_tokenizer(tokenizer, tokenizer_dir: str, out: Path) -> None:
    tokenizer.save_pretrained(out)
    source = Path(tokenizer_dir) / SENTENCEPIECE_FILE
    if source.is_file() and not (out / SENTENCEPIECE_FILE).exists():  # for SentencePiece-based tools (llama.cpp)
        shutil.copyfile(source, out / SENTENCEPIECE_FILE)


def _set_special_tokens(model: PreTrainedModel, tokenizer) -> None:
    for config in (model.config, model.generation_config):
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = pad_token_id(tokenizer)


def export_model(
    ckpt: str | os.PathLike,
    output: str | os.PathLike,
    dtype: Dtype = "bf16",
    tokenizer_dir: str | None = None,
    max_shard_size: str = "2GB",
    overwrite: bool = False,
) -> Path:
    """Writes LoRA-merged weights (safetensors shards), config with ``vocab_size == len(tokenizer)``, and the
    tokenizer; loadable offline by ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(output)``."""
    output = Path(output)
    tokenizer_dir, tokenizer = check_checkpoint(ckpt, tokenizer_dir)
    model = restore_module(ckpt).export_model().eval()
    rows = model.get_input_embeddings().weight.shape[0]
    if rows != len(tokenizer):
        raise ExportError(
            f"{ckpt}: vocabulary mismatch: the model has {rows} embedding rows, the tokenizer {tokenizer_dir} "
            f"{len(tokenizer)} tokens; export with the tokenizer the model was trained with"
        )
    model.config.vocab_size = len(tokenizer)
    _set_special_tokens(model, tokenizer)
    model.to(DTYPES[dtype])
    partial = _write_aside(output, overwrite)
    model.save_pretrained(partial, max_shard_size=max_shard_size)
    _save_tokenizer(tokenizer, tokenizer_dir, partial)
    _write_provenance(partial, ckpt, "model", dtype, len(tokenizer))
    _move_into_place(partial, output)
    return output


def export_adapter(
    ckpt: str | os.PathLike,
    output: str | os.PathLike,
    dtype: Dtype = "fp32",
    tokenizer_dir: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes the LoRA weights plus the full (resized, trained) embedding and head, and the tokenizer, so that
    ``PeftModel.from_pretrained(base resized to len(tokenizer), output)`` is the trained model."""
    from safetensors.torch import load_file

    output = Path(output)
    tokenizer_dir, tokenizer = check_checkpoint(ckpt, tokenizer_dir)
    module = restore_module(ckpt)
    model = module.model
    if not hasattr(model, "peft_config"):
        raise ExportError(
            f"{ckpt}: holds no LoRA adapter (it was trained without one), so an adapter would carry no LoRA "
            "weights; export the full model instead (drop --adapter)"
        )
    base = _adapter_base(module)
    for config in model.peft_config.values():
        config.base_model_name_or_path = base
    model.to(DTYPES[dtype])
    partial = _write_aside(output, overwrite)
    model.save_pretrained(partial, save_embedding_layers=True)
    weights = partial / "adapter_model.safetensors"
    state = load_file(weights) if weights.is_file() else {}
    lora = [k for k, v in state.items() if "lora_" in k and v.numel() > 0]
    embeddings = [k for k, v in state.items() if any(n in k for n in EMBEDDING_NAMES) and v.numel() > 0]
    if not lora or not embeddings or any(v.numel() == 0 for v in state.values()):
        size = weights.stat().st_size if weights.is_file() else 0
        shutil.rmtree(partial)
        raise ExportError(
            f"{ckpt}: refusing to write an adapter with {len(lora)} LoRA and {len(embeddings)} embedding tensors "
            f"({size} bytes; cf. the anchor's empty 443-byte "
            "adapter, saved from partitioned ZeRO parameters): consolidate the checkpoint first "
            "(Lightning's convert_zero_checkpoint_to_fp32_state_dict)"
        )
    _save_tokenizer(tokenizer, tokenizer_dir, partial)
    _write_provenance(partial, ckpt, "adapter", dtype, len(tokenizer))
    _move_into_place(partial, output)
    return output


def _write_provenance(out: Path, ckpt: str | os.PathLike, kind: str, dtype: str, vocab_size: int) -> None:
    record = {"source": str(Path(ckpt).resolve()), "kind": kind, "dtype": dtype, "vocab_size": vocab_size}
    (out / "zhllama_export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
