"""What a stage was built on, pinned: a base model's and a tokenizer's fingerprints, and the one-line difference
between two of them.

A checkpoint stores only what its stages trained, so it is only meaningful on the base it was built on. The base
fingerprint covers what decides the weights without reading all of them. A Hugging Face directory: ``config.json``'s
content and every weight file's name, size, (for safetensors) header, which lists each tensor's name, dtype, shape
and offsets, and the SHA-256 of 64 evenly spaced 64 KiB samples of its tensor data (4 MiB read a file, so another
model of the same shapes -- a chat variant of the same base -- differs too). A ``.gguf`` file: its name and size,
its scalar model metadata (architecture, name, shapes), the SHA-256 of everything before the tensor data (all
metadata, the tokenizer included, and every tensor's name, shape, type and offset) and the same data samples. The tokenizer fingerprint is the SHA-256 of
each tokenizer file: the same ids must mean the same pieces.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".index.json")
SAMPLES, SAMPLE_BYTES = 64, 64 * 1024


def _safetensors_header(path: Path) -> tuple[str, int]:
    """The SHA-256 of a safetensors file's JSON header and the offset where its tensor data starts."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return "truncated", 0
        (length,) = struct.unpack("<Q", prefix)
        return hashlib.sha256(handle.read(min(length, 100_000_000))).hexdigest(), 8 + length


def _data_sample_sha256(path: Path, start: int) -> str:
    """The SHA-256 of ``SAMPLES`` evenly spaced ``SAMPLE_BYTES`` blocks of ``path`` from byte ``start`` on."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        step = max(0, path.stat().st_size - start) // SAMPLES
        for index in range(SAMPLES):
            handle.seek(start + index * step)
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def _gguf_fingerprint(path: Path) -> dict[str, Any]:
    """``{"config": scalar model metadata, "weights": {name: {"size", "header_sha256", "data_sample_sha256"}}}``."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the reader raises bare ValueErrors/struct errors on foreign or truncated files
        raise UserError(f"{path}: not a readable GGUF ({type(exc).__name__}: {exc}); name a llama.cpp model "
                        "file") from None
    config = {}
    for key, field in reader.fields.items():
        value = field.contents() if not key.startswith(("GGUF.", "tokenizer.")) else None
        if isinstance(value, (str, int, float)):
            config[key] = value
    start = int(reader.data_offset)
    with open(path, "rb") as handle:
        header = hashlib.sha256(handle.read(start)).hexdigest()
    entry = {"size": path.stat().st_size, "header_sha256": header, "data_sample_sha256": _data_sample_sha256(path, start)}
    return {"config": config, "weights": {path.name: entry}}


def model_fingerprint(model_dir: Path) -> dict[str, Any]:
    """``{"config": config.json parsed, "weights": {file: {"size", "header_sha256", "data_sample_sha256"}}}`` of a
    HF model directory, or the same of a ``.gguf`` file (see the module's docstring)."""
    model_dir = Path(model_dir)
    if is_gguf(model_dir):
        return _gguf_fingerprint(model_dir)
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{model_dir / 'config.json'}: unreadable ({error}); name a Hugging Face model directory")
    weights: dict[str, dict[str, Any]] = {}
    for path in sorted(model_dir.iterdir()):
        if not path.is_file() or not path.name.endswith(WEIGHT_SUFFIXES):
            continue
        entry: dict[str, Any] = {"size": path.stat().st_size}
        if path.name.endswith(".index.json"):
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            data_start = 0
            if path.suffix == ".safetensors":
                entry["header_sha256"], data_start = _safetensors_header(path)
            entry["data_sample_sha256"] = _data_sample_sha256(path, data_start)
        weights[path.name] = entry
    return {"config": config, "weights": weights}


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
        where = "config.json " if "." not in key else ""  # a GGUF's metadata keys are dotted
        changes.append(f"{where}{key}: {recorded['config'].get(key)!r} -> {actual['config'].get(key)!r}")
    old, new = recorded["weights"], actual["weights"]
    for name in _changed_keys(old, new)[:3]:
        if name not in new:
            changes.append(f"{name} missing")
        elif name not in old:
            changes.append(f"{name} added")
        elif old[name]["size"] != new[name]["size"]:
            changes.append(f"{name} size {old[name]['size']} -> {new[name]['size']} bytes")
        elif old[name].get("header_sha256") != new[name].get("header_sha256"):
            changes.append(f"{name} holds other tensors (header differs)")
        else:
            changes.append(f"{name} holds other weights (sampled tensor data differs)")
    return "; ".join(changes)


def tokenizer_difference(recorded: dict[str, str], actual: dict[str, str]) -> str | None:
    """Which tokenizer files changed, in a few words; None when none did."""

    def change(name: str) -> str:
        return "differs" if name in recorded and name in actual else "missing" if name in recorded else "added"

    return ", ".join(f"{name} {change(name)}" for name in _changed_keys(recorded, actual)) or None
