"""The base fingerprint tells apart two Hugging Face models of the same layout (a chat variant of a base)."""

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lightning_modules.base_fingerprint import model_difference, model_fingerprint
from lightning_modules.model_loading import tiny_llama_config


def save_model(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=64, hidden_size=32))).save_pretrained(folder)
    return folder


def test_same_layout_other_weights_is_another_base(tmp_path: Path) -> None:
    base, same, other = (save_model(tmp_path / name, seed) for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert model_difference(model_fingerprint(base), model_fingerprint(same)) is None
    assert model_difference(model_fingerprint(base), model_fingerprint(other)) == (
        "model.safetensors holds other weights (sampled tensor data differs)"
    )
