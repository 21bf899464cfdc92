"""Byte-level BPE bases for tests.

- a toy base trained here in a second on English prose (GPT-2 layout: ``ByteLevel`` pre-tokenizer and alphabet),
  with a special token whose id comes after the vocabulary, as Qwen2's do;
- the real SmolLM2 (``.gguf``) and Mistral Tekken tokenizers from the pinned demo assets, fetched once into the
  demo-asset cache (tests that use them are marked ``demo_assets``) and converted once per session: training and
  merging take the loaded base, so no test converts again.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from datamodules.demo_assets import asset_path
from tokenization.byte_level_base import ByteLevelBase, load_byte_level_base
from tokenization.byte_level_tokens import bytes_to_unicode

TOY_SPECIAL = "<|endoftext|>"
REAL_BASES = {"smollm2": "smollm2_gguf", "tekken": "mistral_tekken", "qwen3": "qwen3_tokenizer"}


def bytes_token(data: bytes) -> str:
    """The byte-level token string of ``data``."""
    return "".join(bytes_to_unicode()[b] for b in data)


def write_toy_base(folder: Path, texts: list[str], vocab_size: int = 800) -> Path:
    """A GPT-2-style byte-level BPE trained on ``texts``, written as a tokenizer directory."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_special_tokens([TOY_SPECIAL])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"eos_token": TOY_SPECIAL, "pad_token": TOY_SPECIAL}
    (folder / "tokenizer_config.json").write_text(json.dumps(config) + "\n", encoding="utf-8")
    return folder


def write_jsonl(path: Path, texts: list[str]) -> Path:
    """``texts`` as ``wiki_zh``-layout JSON lines, one document a line."""
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def load_real_base(name: str) -> ByteLevelBase:
    """The named real base (``smollm2``, ``tekken`` or ``qwen3``), loaded from its demo asset."""
    return load_byte_level_base(asset_path(REAL_BASES[name]))
