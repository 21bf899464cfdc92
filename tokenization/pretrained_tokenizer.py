"""The one loader of a transformers tokenizer a user names: a Hugging Face tokenizer directory or a ``.gguf`` file.

A GGUF (llama.cpp's model file) carries its tokenizer in its metadata; transformers rebuilds it offline
(``AutoTokenizer`` with ``gguf_file=``). Saved with ``save_pretrained``, that tokenizer becomes ordinary files
(``tokenizer.json``, ``tokenizer_config.json``, its chat template): what a checkpoint records and an export
writes, so a stage trained on a GGUF exports the tokenizer it trained with.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

from tokenization.errors import UserError

GGUF_SUFFIX = ".gguf"
#: The files of a tokenizer directory that define it (which id is which piece, the special tokens, the template).
TOKENIZER_FILES = (
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja",
)


def is_gguf(path: str | os.PathLike | None) -> bool:
    return path is not None and Path(path).suffix == GGUF_SUFFIX and Path(path).is_file()


def load_tokenizer(source: str | os.PathLike) -> Any:
    """The tokenizer of a Hugging Face directory or of a ``.gguf`` file, read offline."""
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(source).expanduser()
    if is_gguf(path):
        try:
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
        except Exception as exc:  # the gguf reader raises bare ValueErrors/KeyErrors on foreign or truncated files
            raise UserError(f"{path}: cannot read a tokenizer from this GGUF ({type(exc).__name__}: {exc})") from None
    if not any((path / name).is_file() for name in ("tokenizer_config.json", "tokenizer.json")):
        raise UserError(f"{path}: no tokenizer there (no tokenizer_config.json / tokenizer.json); pass a Hugging Face "
                        "tokenizer directory (what `zhllama tokenizer merge` or `zhllama export` writes) or a .gguf")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def tokenizer_files(source: str | os.PathLike) -> dict[str, bytes]:
    """The files that define the tokenizer at ``source`` by name: a directory's own, or what a ``.gguf``'s
    tokenizer saves as (the same bytes for the same file)."""
    path = Path(source).expanduser().resolve()
    if is_gguf(path):
        stat = path.stat()
        return dict(_gguf_tokenizer_files(path, stat.st_size, stat.st_mtime_ns))
    return {name: (path / name).read_bytes() for name in TOKENIZER_FILES if (path / name).is_file()}


@functools.lru_cache(maxsize=2)
def _gguf_tokenizer_files(path: Path, size: int, mtime_ns: int) -> tuple[tuple[str, bytes], ...]:
    with tempfile.TemporaryDirectory(prefix="zhllama-gguf-tokenizer-") as folder:
        load_tokenizer(path).save_pretrained(folder)
        return tuple((name, (Path(folder) / name).read_bytes()) for name in TOKENIZER_FILES
                     if (Path(folder) / name).is_file())
