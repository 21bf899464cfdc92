"""The tokenizer inside a ``.gguf`` file as a ``tokenizers.Tokenizer`` plus its special tokens and chat template.

A GGUF (llama.cpp's model file) carries the vocabulary, merges, token types and special-token ids in its
metadata. transformers rebuilds a ``tokenizer.json``-equivalent from them (what ``AutoTokenizer`` does with
``gguf_file=``); calling its GGUF tokenizer reader directly reads only the two arrays it needs instead of every
metadata field and skips loading a model config. Only byte-level BPE vocabularies (``tokenizer.ggml.model = gpt2``:
SmolLM2, LLaMA-3, Qwen2) are byte-level bases; a SentencePiece-style GGUF is refused by the caller.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from tokenization.errors import UserError

ROLES = ("bos_token", "eos_token", "unk_token", "pad_token")


def read_gguf_tokenizer(path: Path) -> tuple[Tokenizer, dict[str, str], str | None]:
    """The GGUF's tokenizer, its special-token roles and its chat template (None if it has none)."""
    from transformers.integrations.gguf import convert_gguf_tokenizer, get_gguf_tokenizer

    try:
        architecture, tokenizer_dict, config = get_gguf_tokenizer(str(path))
        tokenizer, _ = convert_gguf_tokenizer(architecture, tokenizer_dict)
    except Exception as exc:  # the reader raises bare ValueErrors/KeyErrors/struct errors on foreign or truncated files
        raise UserError(f"{path}: cannot read a tokenizer from this GGUF ({type(exc).__name__}: {exc})") from None
    roles = {role: str(config[role]) for role in ROLES if config.get(role) is not None}
    template = config.get("chat_template")
    return tokenizer, roles, template if isinstance(template, str) else None
