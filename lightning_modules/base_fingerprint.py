"""What a stage was built on, pinned: a base model directory's and a tokenizer's fingerprints, and the one-line
difference between two of them.

A checkpoint stores only what its stages trained, so it is only meaningful on the base it was built on. The base
fingerprint covers what decides the weights without reading them: ``config.json``'s content and every weight
file's name, size and (for safetensors) header, which lists each tensor's name, dtype, shape and offsets. The
tokenizer fingerprint is the SHA-256 of each tokenizer file: the same ids must mean the same pieces.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from tokenization.errors import UserError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".index.json")
TOKENIZER_FILES = (
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"
)


def _safetensors_header_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return "truncated"
        (length,) = struct.unpack("<Q", prefix)
        return hashlib.sha256(handle.read(min(length, 100_000_000))).hexdigest()


def model_fingerprint(model_dir: Path) -> dict[str, Any]:
    """``{"config": config.json parsed, "weights": {file: {"size", "header_sha256"}}}`` of a HF model directory."""
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{model_dir / 'config.json'}: unreadable ({error}); name a Hugging Face model directory")
    weights: dict[str, dict[str, Any]] = {}
    for path in sorted(model_dir.iterdir()):
        if not path.is_file() or not path.name.endswith(WEIGHT_SUFFIXES):
            continue
        entry: dict[str, Any] = {"size": path.stat().st_size}
        if path.suffix == ".safetensors":
            entry["header_sha256"] = _safetensors_header_sha256(path)
        elif path.name.endswith(".index.json"):
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        weights[path.name] = entry
    return {"config": config, "weights": weights}


def tokenizer_files(tokenizer_dir: Path) -> dict[str, bytes]:
    """The tokenizer files of a directory by name (what defines which id is which piece)."""
    return {name: (Path(tokenizer_dir) / name).read_bytes() for name in TOKENIZER_FILES
            if (Path(tokenizer_dir) / name).is_file()}


def tokenizer_fingerprint(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}


def _changed_keys(recorded: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return sorted(k for k in recorded.keys() | actual.keys() if recorded.get(k) != actual.get(k))


def model_difference(recorded: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """What changed between two model fingerprints, in a few words; None when they are equal."""
    if recorded == actual:
        return None
    changes = []
    for key in _changed_keys(recorded["config"], actual["config"])[:3]:
        changes.append(f"config.json {key}: {recorded['config'].get(key)!r} -> {actual['config'].get(key)!r}")
    old, new = recorded["weights"], actual["weights"]
    for name in _changed_keys(old, new)[:3]:
        if name not in new:
            changes.append(f"{name} missing")
        elif name not in old:
            changes.append(f"{name} added")
        elif old[name]["size"] != new[name]["size"]:
            changes.append(f"{name} size {old[name]['size']} -> {new[name]['size']} bytes")
        else:
            changes.append(f"{name} holds other tensors (header differs)")
    return "; ".join(changes)


def tokenizer_difference(recorded: dict[str, str], actual: dict[str, str]) -> str | None:
    """Which tokenizer files changed, in a few words; None when none did."""

    def change(name: str) -> str:
        return "differs" if name in recorded and name in actual else "missing" if name in recorded else "added"

    return ", ".join(f"{name} {change(name)}" for name in _changed_keys(recorded, actual)) or None
