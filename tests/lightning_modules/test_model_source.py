"""Model sources: the SmolLM2-135M-Instruct GGUF demo asset loads offline as a real LLaMA with its byte-level
tokenizer; a broken GGUF and a model directory without a tokenizer are refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.demo_assets import asset_path
from lightning_modules.generation import load_model
from lightning_modules.model_loading import build_causal_lm, tiny_llama_config
from lightning_modules.model_source import load_model_and_tokenizer
from lightning_modules.text_scoring import TextScorer
from tokenization.errors import UserError
from tokenization.token_byte_lengths import is_byte_level, token_byte_lengths

ENGLISH = ("The Python standard library is very extensive, offering a wide range of facilities. It contains built-in "
           "modules that provide access to system functionality such as file input and output.")


@pytest.mark.demo_assets
def test_smollm2_gguf_is_a_pretrained_llama_with_a_byte_level_tokenizer() -> None:
    model, tokenizer = load_model(asset_path("smollm2_gguf"), dtype="fp32", device="cpu")  # generate's loader
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # 134.5M, head tied to the embedding
    assert len(tokenizer) == 49152 and is_byte_level(tokenizer)
    ids = tokenizer(ENGLISH, add_special_tokens=False)["input_ids"]
    assert sum(token_byte_lengths(tokenizer).bytes[i] for i in ids) == len(ENGLISH.encode("utf-8"))
    [score] = TextScorer(model, tokenizer, window=64, stride=32).score([ENGLISH])
    bits_per_byte = score.totals().summary()["bits_per_byte"]
    assert bits_per_byte < 2.0  # trained weights; a random init pays about log2(49152) / 4.5 = 3.5 bits a byte


def test_a_broken_gguf_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "model.gguf"
    broken.write_bytes(b"GGUF but not really")
    with pytest.raises(UserError, match="model.gguf"):
        load_model_and_tokenizer(broken)


def test_a_model_directory_needs_its_tokenizer(tmp_path: Path) -> None:
    build_causal_lm(None, tiny_llama_config(vocab_size=64, max_position_embeddings=32)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="no tokenizer"):
        load_model_and_tokenizer(tmp_path)
