"""Build the causal LM a stage trains: a local Hugging Face directory or a random-init ``LlamaConfig``.

Random-init models are built under an explicit seed, so a checkpoint that stores only trained parameters
can be turned back into the full model (see ``checkpoint_io.restore_module``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GgufConfig, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from tokenization.errors import UserError

logger = logging.getLogger(__name__)


def tiny_llama_config(
    vocab_size: int = 32000,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    **overrides: Any,
) -> dict[str, Any]:
    """``LlamaConfig`` keyword arguments of a small LLaMA for tests, the demo and the bench (YAML-friendly dict)."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        **overrides,
    )


def build_causal_lm(
    pretrained: str | os.PathLike | None = None,
    model_config: dict[str, Any] | None = None,
    init_seed: int = 0,
) -> PreTrainedModel:
    """Load ``pretrained`` (a local HF directory or ``.gguf`` file, never the hub) or build
    ``LlamaConfig(**model_config)`` with weights drawn from ``init_seed`` (global RNG state is left untouched).
    SDPA attention; weights in the current default dtype, so Lightning's ``*-true`` precisions load the model
    directly in that dtype (a ``.gguf`` is dequantised to it)."""
    if (pretrained is None) == (model_config is None):
        raise UserError("give exactly one of `pretrained` (a local Hugging Face model directory) or `model_config`")
    dtype = torch.get_default_dtype()
    if pretrained is not None:
        path = Path(pretrained)
        if path.suffix == ".gguf" and path.is_file():  # llama.cpp's file, dequantised to a plain dense `dtype` model
            dense = GgufConfig(gguf_file=str(path), dequantize=True)  # trainable and savable: no quantizer left on it
            return AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=dtype, attn_implementation="sdpa", local_files_only=True,
                quantization_config=dense,
            )
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a Hugging Face model directory (no config.json); pass a local dir")
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation="sdpa", local_files_only=True
        )
    config = LlamaConfig(**model_config, attn_implementation="sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = LlamaForCausalLM(config)
    return model.to(dtype)


@contextmanager
def outside_zero_init() -> Iterator[None]:
    """Modules created inside get whole parameters even within DeepSpeed's ``zero.Init`` (ZeRO-3's partitioning
    of parameters as modules create them, which Lightning enters around ``configure_model``): loading a base,
    growing its vocabulary and replaying earlier stages need whole tensors. The engine partitions the model when
    it starts; until then each rank holds all of it."""
    partitioning = sys.modules.get("deepspeed.runtime.zero.partition_parameters")  # not imported: not active
    if partitioning is None or partitioning.top_level_context is None:
        yield
        return
    partitioning.shutdown_init_context()
    try:
        yield
    finally:
        partitioning.restore_init_context()


def vocab_rows(model: PreTrainedModel) -> int:
    """Rows of the input embedding, also while DeepSpeed ZeRO-3 holds only this rank's partition of it."""
    weight = model.get_input_embeddings().weight
    return getattr(weight, "ds_shape", weight.shape)[0]


@torch.no_grad()
def resize_vocabulary(
    model: PreTrainedModel, new_size: int, subtoken_ids: Sequence[Sequence[int]] | None = None
) -> int:
    """Grow ``embed_tokens`` and ``lm_head`` to ``new_size`` rows; every original row stays bit-identical. Returns
    the old size. Never shrinks: that would drop trained rows.

    A new row starts at the mean of the old rows (an "average" token rather than noise), or, with
    ``subtoken_ids`` (one list per new row: the old rows' ids its token splits into, see
    ``tokenization.subtoken_ids``), at the mean of those rows, separately for an untied embedding and head; a
    new row with no ids keeps the mean of the old rows."""
    old_size = model.get_input_embeddings().weight.shape[0]
    if new_size < old_size:
        raise UserError(
            f"tokenizer has {new_size} tokens but the model has {old_size} embedding rows; refusing to drop rows "
            "(use the tokenizer the model was trained with or a larger one)"
        )
    if new_size == old_size:
        return old_size
    if subtoken_ids is not None:
        _check_subtoken_ids(subtoken_ids, old_size, new_size)
    model.resize_token_embeddings(new_size, mean_resizing=False)
    for weight in {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
        weight[old_size:] = weight[:old_size].mean(dim=0, dtype=torch.float32).to(weight.dtype)
        for row, ids in enumerate(subtoken_ids or (), start=old_size):
            if ids:
                weight[row] = weight[list(ids)].mean(dim=0, dtype=torch.float32).to(weight.dtype)
    unsplit = sum(not ids for ids in subtoken_ids or ())
    if unsplit:
        logger.warning("new_token_init subtoken_mean: %d of %d new tokens have no base tokens; they start at the "
                       "mean of the old rows", unsplit, new_size - old_size)
    return old_size


def _check_subtoken_ids(subtoken_ids: Sequence[Sequence[int]], old_size: int, new_size: int) -> None:
    if len(subtoken_ids) != new_size - old_size:
        raise UserError(f"subtoken ids name {len(subtoken_ids)} new tokens but the model grows from {old_size} to "
                        f"{new_size} rows: they were made for another vocabulary (new_token_init subtoken_mean)")
    outside = [i for ids in subtoken_ids for i in ids if not 0 <= i < old_size]
    if outside:
        raise UserError(f"subtoken ids {outside[:5]} are not among the model's {old_size} old rows: the base "
                        "tokenizer does not match the base model (new_token_init subtoken_mean)")
