"""Checkpoint -> a model anyone can load: a standalone Hugging Face directory, or a base plus a PEFT adapter.

The module is rebuilt by :func:`lightning_modules.checkpoint_io.restore_module` (the one restore path) from the
checkpoint alone: its pinned base, its earlier stages' tensors and its own; the tokenizer it trained with travels
inside the checkpoint. The output is written through ``atomic_directory``: built aside, renamed into place, never
over a directory zhllama did not write nor over the checkpoint being read.

Refused rather than written: an adapter directory holding no (or empty) LoRA or embedding weights, and a
``config.vocab_size`` that disagrees with the tokenizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from safetensors.torch import load_file
from transformers import AutoTokenizer, PreTrainedModel

from datamodules.sft_batching import pad_token_id
from lightning_modules.base_fingerprint import tokenizer_difference, tokenizer_fingerprint
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.checkpoint_io import restore_module
from lightning_modules.freeze_policy import describe
from lightning_modules.generation import DTYPES
from lightning_modules.stage_checkpoint import checkpoint_file, read_stage_record
from lightning_modules.stage_lineage import is_pretrained_model
from tokenization.atomic_write import atomic_directory, check_output, is_zhllama_output
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import TOKENIZER_FILES, tokenizer_files

Dtype = Literal["bf16", "fp16", "fp32"]
EMBEDDING_NAMES = ("embed_tokens", "lm_head")
ADAPTER_BASE = "base"  # the adapter directory's subdirectory holding the model the adapter applies to


@dataclass
class ExportSource:
    """What an export reads: the checkpoint (or model directory), its record, the tokenizer files, and every
    path the output must not replace."""

    path: Path
    record: dict[str, Any] | None
    tokenizer: dict[str, bytes]
    inputs: list[Path]


def export_source(ckpt: str | os.PathLike, tokenizer_dir: str | None, base_dir: str | None) -> ExportSource:
    """Reads (weights_only) and checks what ``ckpt`` names, before anything heavy is built."""
    path = Path(ckpt).expanduser().resolve()
    if is_pretrained_model(path):
        files = tokenizer_files(Path(tokenizer_dir) if tokenizer_dir else path)
        return ExportSource(path, None, _required(files, path), [path])
    path = checkpoint_file(path)
    record = read_stage_record(path, mmap=True)
    recorded = record["tokenizer"]
    if tokenizer_dir is not None and recorded is not None:
        difference = tokenizer_difference(tokenizer_fingerprint(recorded["files"]),
                                          tokenizer_fingerprint(tokenizer_files(Path(tokenizer_dir))))
        if difference:
            raise UserError(f"{path}: trained with the tokenizer {recorded['path']}, not {tokenizer_dir} "
                            f"({difference}); drop --tokenizer (the checkpoint carries its own)")
    files = recorded["files"] if recorded is not None else tokenizer_files(Path(tokenizer_dir)) if tokenizer_dir else {}
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    inputs = [path, path.parent, run_dir]
    for extra in (base_dir or record["base"]["pretrained"], tokenizer_dir):
        if extra is not None:
            inputs.append(Path(extra).expanduser().resolve())
    return ExportSource(path, record, _required(files, path), inputs)


def _required(files: dict[str, bytes], source: Path) -> dict[str, bytes]:
    if "tokenizer_config.json" not in files:
        raise UserError(f"{source}: names no tokenizer (none recorded, none beside the model); pass --tokenizer DIR, "
                        "the tokenizer the model was trained with")
    return files


def check_destination(output: str | os.PathLike, source: ExportSource, overwrite: bool) -> Path:
    """``output`` resolved; an earlier zhllama output is replaced only with ``overwrite``."""
    output = check_output(Path(output), source.inputs, kind="export")
    if output.is_dir() and any(output.iterdir()) and is_zhllama_output(output) and not overwrite:
        raise UserError(f"{output}: holds an earlier zhllama output; pass --overwrite to replace it, or choose "
                        "another --output")
    return output


def _write_tokenizer(files: dict[str, bytes], out: Path):
    """The trained tokenizer's files, plus the ``transformers`` files saved from them (a fast tokenizer.json)."""
    foreign = sorted(set(files) - set(TOKENIZER_FILES))
    if foreign:
        raise UserError(f"the checkpoint's tokenizer record names files a tokenizer does not have ({', '.join(foreign[:3])}); "
                        "it was not written by `zhllama fit`")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    tokenizer.save_pretrained(out)
    return tokenizer


def _prepare(model: PreTrainedModel, tokenizer, source: Path, dtype: Dtype) -> None:
    rows = model.get_input_embeddings().weight.shape[0]
    if rows != len(tokenizer):
        raise UserError(f"{source}: vocabulary mismatch: the model has {rows} embedding rows, the tokenizer "
                        f"{len(tokenizer)} tokens; export with the tokenizer the model was trained with")
    model.config.vocab_size = len(tokenizer)
    model.config.use_cache = True
    for config in (model.config, model.generation_config):
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = pad_token_id(tokenizer)
    model.to(DTYPES[dtype])


def _write_provenance(out: Path, source: ExportSource, kind: str, dtype: str, vocab_size: int) -> None:
    record = {"source": str(source.path), "kind": kind, "dtype": dtype, "vocab_size": vocab_size,
              "tokenizer_sha256": tokenizer_fingerprint(source.tokenizer)}
    if source.record is not None:
        base = source.record["base"]
        record["base"] = base["pretrained"] or {"model_config": base["model_config"], "init_seed": base["init_seed"]}
    (out / "zhllama_export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def export_model(
    ckpt: str | os.PathLike,
    output: str | os.PathLike,
    dtype: Dtype = "bf16",
    tokenizer_dir: str | None = None,
    max_shard_size: str = "2GB",
    overwrite: bool = False,
    base_dir: str | None = None,
) -> Path:
    """Writes LoRA-merged weights (safetensors shards), config with ``vocab_size == len(tokenizer)``, and the
    tokenizer; loadable offline by ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(output)``."""
    source = export_source(ckpt, tokenizer_dir, base_dir)
    output = check_destination(output, source, overwrite)
    with atomic_directory(output, kind="export", inputs=source.inputs) as staging:
        tokenizer = _write_tokenizer(source.tokenizer, staging)
        model = restore_module(source.path, base_dir).export_model().eval()
        _prepare(model, tokenizer, source.path, dtype)
        model.save_pretrained(staging, max_shard_size=max_shard_size)
        _write_provenance(staging, source, "model", dtype, len(tokenizer))
    return output


def export_adapter(
    ckpt: str | os.PathLike,
    output: str | os.PathLike,
    dtype: Dtype = "bf16",
    tokenizer_dir: str | None = None,
    overwrite: bool = False,
    base_dir: str | None = None,
) -> Path:
    """Writes ``output/base/``, the model the stage started from (base and earlier stages merged, vocabulary
    resized, with the tokenizer), and beside it this stage's LoRA with its trained embedding and head as a PEFT
    adapter: ``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(output/"base"), output)``."""
    source = export_source(ckpt, tokenizer_dir, base_dir)
    trained = source.record["trainable"] if source.record is not None else []
    if not any("lora_" in name for name in trained):
        record = source.record
        policy = describe(record["freeze_policy"]) if record is not None else "nothing (a model directory)"
        raise UserError(f"{source.path}: trained {policy}, no LoRA, so there is no adapter to write (what it "
                        "trained are whole weights); export the full model instead (drop --adapter)")
    output = check_destination(output, source, overwrite)
    with atomic_directory(output, kind="export", inputs=source.inputs) as staging:
        tokenizer = _write_tokenizer(source.tokenizer, staging)

        def save_start(module: CausalLMModule) -> None:
            _prepare(module.model, tokenizer, source.path, dtype)
            module.model.save_pretrained(staging / ADAPTER_BASE)
            _write_tokenizer(source.tokenizer, staging / ADAPTER_BASE)

        model = restore_module(source.path, base_dir, at_start=save_start).model
        for config in model.peft_config.values():
            config.base_model_name_or_path = str(output / ADAPTER_BASE)
        model.to(DTYPES[dtype])
        model.save_pretrained(staging, save_embedding_layers=True)
        _check_adapter(staging / "adapter_model.safetensors", source.path,
                       any(n in name for name in trained for n in EMBEDDING_NAMES))
        _write_provenance(staging, source, "adapter", dtype, len(tokenizer))
    return output


def _check_adapter(weights: Path, source: Path, trained_embeddings: bool) -> None:
    state = load_file(weights) if weights.is_file() else {}
    lora = [k for k, v in state.items() if "lora_" in k and v.numel() > 0]
    embeddings = [k for k, v in state.items() if any(n in k for n in EMBEDDING_NAMES) and v.numel() > 0]
    if not lora or (trained_embeddings and not embeddings) or any(v.numel() == 0 for v in state.values()):
        size = weights.stat().st_size if weights.is_file() else 0
        raise UserError(
            f"{source}: refusing to write an adapter with {len(lora)} LoRA and {len(embeddings)} embedding tensors "
            f"({size} bytes): the checkpoint holds no usable trained weights; export the full model (drop --adapter) "
            "to see what it holds"
        )
