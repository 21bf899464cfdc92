"""Loads a byte-level BPE base tokenizer from a ``tokenizer.json``, a Hugging Face directory, a ``.gguf`` or a
Tekken file, as one ``tokenizer.json`` document plus the ``tokenizer_config.json`` entries a written directory
needs (special-token roles, chat template).

A byte-level base is a ``tokenizers`` BPE over the 256-character byte alphabet with a ``ByteLevel``
pre-tokenizer (alone or after a ``Split`` regex): GPT-2, SmolLM2, LLaMA-3, Qwen2, Tekken. Anything else (a
SentencePiece-style ``tokenizer.json`` with byte fallback, WordPiece, a subword prefix) is refused by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from tokenization.errors import UserError
from tokenization.gguf_tokenizer import read_gguf_tokenizer
from tokenization.tekken import is_tekken_file, read_tekken

#: tokenizer_config.json keys carried over from a base directory; ids and classes are the base's own business.
CONFIG_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "chat_template", "model_max_length",
               "clean_up_tokenization_spaces", "additional_special_tokens")


@dataclass
class ByteLevelBase:
    """A base tokenizer: its ``tokenizer.json`` document, the config entries to write, and where it came from."""

    document: dict
    config: dict
    source: Path
    sha256: str  # of the canonical tokenizer.json text, so a merge can tell it has the base a training used
    tokenizer: Tokenizer


def canonical_sha256(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def uses_byte_level(component: dict | None) -> bool:
    if not component:
        return False
    if component.get("type") == "ByteLevel":
        return True
    return any(uses_byte_level(step) for step in component.get("pretokenizers", []))


def require_byte_level(document: dict, source: Path) -> None:
    model = document.get("model") or {}
    problem = None
    if model.get("type") != "BPE":
        problem = f"its model is {model.get('type')!r}, not BPE"
    elif not uses_byte_level(document.get("pre_tokenizer")):
        problem = "it has no ByteLevel pre-tokenizer (a SentencePiece-style tokenizer: pass its tokenizer.model)"
    elif model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("dropout"):
        problem = "its BPE uses a subword prefix/suffix or dropout"
    if problem:
        raise UserError(f"{source}: not a byte-level BPE tokenizer: {problem}")


def read_document(path: Path) -> tuple[dict, Tokenizer]:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
        tokenizer = Tokenizer.from_str(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{path}: not a tokenizer.json ({exc}); pass a tokenizer.json, its directory or a .gguf"
        ) from None
    except Exception as exc:  # tokenizers raises a bare Exception on a JSON it cannot build
        raise UserError(f"{path}: the tokenizers library cannot load it ({exc})") from None
    return document, tokenizer


def directory_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    return {key: config[key] for key in CONFIG_KEYS if config.get(key) is not None}


def load_byte_level_base(path: str | Path | ByteLevelBase) -> ByteLevelBase:
    """The byte-level base at ``path``: a tokenizer.json, a directory holding one, a .gguf or a tekken*.json.

    An already loaded base is returned as it is, so a caller that trains, merges and measures converts it once.
    """
    if isinstance(path, ByteLevelBase):
        return path
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(
            f"{path}: base tokenizer not found; pass a tokenizer.json, its directory, a .gguf or a tekken.json"
        )
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise UserError(f"{path}: directory holds neither tokenizer.model nor tokenizer.json; pass a tokenizer")
        try:
            document, tokenizer = read_document(path / "tokenizer.json")
            require_byte_level(document, path / "tokenizer.json")
        except UserError as error:
            raise UserError(
                f"{path}: holds a tokenizer.json only (no SentencePiece tokenizer.model), and {error}"
            ) from None
        config = directory_config(path)
    elif path.suffix == ".gguf":
        tokenizer, config, template = read_gguf_tokenizer(path)
        document = json.loads(tokenizer.to_str())
        if template:
            config["chat_template"] = template
    elif is_tekken_file(path):
        tokenizer, config = read_tekken(path)
        document = json.loads(tokenizer.to_str())
    else:
        (document, tokenizer), config = read_document(path), directory_config(path.parent)
    require_byte_level(document, path)
    return ByteLevelBase(document, config, path.resolve(), canonical_sha256(document), tokenizer)
