"""A 2-layer, 64-wide random-init LLaMA "extended" from 128 to 160 tokens, fixed token batches and a quiet CPU
Trainer: the shared kit of the training-core tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import tiny_llama_config

ORIGINAL_VOCAB = 128
VOCAB = 160


def tiny_module(**overrides: Any) -> CausalLMModule:
    args: dict[str, Any] = dict(
        model_config=tiny_llama_config(vocab_size=VOCAB, max_position_embeddings=64),
        original_vocab_size=ORIGINAL_VOCAB,
        learning_rate=1e-2,
        warmup_steps=0,
        loss_chunk_size=24,
    )
    args.update(overrides)
    if "init_from" in overrides:
        args.pop("model_config")
    return CausalLMModule(**args)


class ResumableLoader(DataLoader):
    """A DataLoader whose position Lightning saves in checkpoints (``state_dict``) and restores on resume,
    so a run resumed mid-epoch sees the batches the uninterrupted run saw."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._yielded = 0
        self._skip = 0

    def __iter__(self):
        skip, self._skip = self._skip, 0
        self._yielded = skip
        for index, batch in enumerate(super().__iter__()):
            if index >= skip:
                self._yielded += 1
                yield batch

    def state_dict(self) -> dict[str, int]:
        return {"yielded": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = state["yielded"]


def token_loader(n_batches: int = 4, batch_size: int = 2, seq_len: int = 32, seed: int = 0) -> DataLoader:
    """Fixed random blocks over the whole vocabulary (old and new rows both occur), in a fixed order."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n_batches * batch_size, seq_len), generator=generator)
    samples = [{"input_ids": row, "labels": row.clone()} for row in ids]
    return ResumableLoader(samples, batch_size=batch_size, shuffle=False)


def tiny_trainer(root, callbacks: Sequence[pl.Callback] = (), max_steps: int = 3, **overrides: Any) -> pl.Trainer:
    args: dict[str, Any] = dict(
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    args.update(overrides)
    return pl.Trainer(**args)


def snapshot(module: CausalLMModule) -> dict[str, torch.Tensor]:
    """Parameters by their name in the plain model (peft's wrapper and ``base_layer`` prefixes removed)."""
    out = {}
    for name, p in module.causal_lm.named_parameters():
        out[name.replace(".base_layer", "")] = p.detach().clone()
    return out
