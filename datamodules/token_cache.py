"""On-disk token cache: one memory-mapped token file per corpus + tokenizer + settings, never half-used.

nanoGPT-style: all documents' token ids (each framed BOS ... EOS) concatenated in one flat binary file
(``uint16`` when the vocabulary fits, else ``uint32``), beside the per-document token counts, the
validation split flags and a small ``meta.json``. An entry lives in ``<cache_dir>/<key>/`` where ``key`` is
the SHA-256 of everything that changes the result (the anchor's cache ignored the tokenizer), so changed
inputs or settings get a new entry and unchanged ones are reused instantly.

Safety: an entry is written into ``<key>.partial-<host>-<pid>/`` and renamed into place only when complete;
``meta.json`` records each file's size. An entry whose meta is missing, unreadable, for another key or whose
files disagree with the recorded sizes (a killed run, a truncated copy) is deleted and rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the layout or the meaning of the files changes; part of every key.
FORMAT_VERSION = 1
CACHE_DIR_ENV = "ZHLLAMA_TOKEN_CACHE"
TOKENS_FILE = "tokens.bin"
DOC_LENGTHS_FILE = "doc_lengths.bin"  # uint32 token count of each kept document, framing included
VAL_FLAGS_FILE = "is_val.bin"  # uint8 per document: 1 = validation
META_FILE = "meta.json"


def default_cache_dir() -> Path:
    """``$ZHLLAMA_TOKEN_CACHE``, else ``$XDG_CACHE_HOME/zhllama/tokens``, else ``~/.cache/zhllama/tokens``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "zhllama" / "tokens"


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def input_fingerprint(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Path, size and modification time of each input: enough to notice an edited or replaced file."""
    out = []
    for path in paths:
        stat = path.stat()
        out.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return out


def cache_key(settings: Mapping[str, Any]) -> str:
    payload = json.dumps({"format_version": FORMAT_VERSION, **settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenCache:
    """A complete cache entry, opened read-only. Token ids are memory-mapped, never loaded whole."""

    path: Path
    meta: dict[str, Any]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    @property
    def tokens_path(self) -> Path:
        return self.path / TOKENS_FILE

    def tokens(self) -> np.memmap | np.ndarray:
        if self.meta["tokens"] == 0:
            return np.zeros(0, dtype=self.dtype)  # np.memmap refuses empty files
        return np.memmap(self.tokens_path, dtype=self.dtype, mode="r")

    def doc_lengths(self) -> np.ndarray:
        return np.fromfile(self.path / DOC_LENGTHS_FILE, dtype=np.uint32).astype(np.int64)

    def is_val(self) -> np.ndarray:
        return np.fromfile(self.path / VAL_FLAGS_FILE, dtype=np.uint8).astype(bool)


def _entry_problem(entry: Path, key: str) -> str | None:
    """Why ``entry`` cannot be used, or None when it is complete and belongs to ``key``."""
    try:
        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "meta.json is missing"
    except (OSError, ValueError) as exc:
        return f"meta.json is unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("format_version") != FORMAT_VERSION:
        return "meta.json belongs to another key or format version"
    for name, size in meta.get("file_sizes", {}).items():
        file = entry / name
        if not file.is_file() or file.stat().st_size != size:
            actual = file.stat().st_size if file.is_file() else "missing"
            return f"{name} has {actual} bytes, meta.json says {size}"
    if set(meta.get("file_sizes", {})) != {TOKENS_FILE, DOC_LENGTHS_FILE, VAL_FLAGS_FILE}:
        return "meta.json does not list every cache file"
    return None


def open_cache(cache_dir: Path, key: str) -> TokenCache | None:
    """The complete entry for ``key``, or None. A broken entry is removed (with a warning) so it gets rebuilt."""
    entry = Path(cache_dir) / key
    if not entry.exists():
        return None
    problem = _entry_problem(entry, key)
    if problem is None:
        return TokenCache(entry, json.loads((entry / META_FILE).read_text(encoding="utf-8")))
    warnings.warn(f"token cache {entry} is incomplete or corrupt ({problem}); deleting and rebuilding it", stacklevel=2)
    shutil.rmtree(entry, ignore_errors=True)
    return None


def _remove_stale_partials(cache_dir: Path, key: str) -> None:
    """Deletes this host's leftovers of killed builds (their process is gone); other hosts' are left alone."""
    host = socket.gethostname()
    for partial in cache_dir.glob(f"{key}.partial-{host}-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class TokenCacheWriter:
    """Builds one entry aside and publishes it atomically. Use as a context manager: errors discard it.

    ``append`` takes already-framed token ids of whole documents in corpus order; ``finish`` writes the split
    flags and the meta and renames the directory into place.
    """

    def __init__(self, cache_dir: Path, key: str, dtype: np.dtype) -> None:
        self.cache_dir = Path(cache_dir)
        self.key = key
        self.dtype = np.dtype(dtype)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(self.cache_dir, key)
        self.partial = self.cache_dir / f"{key}.partial-{socket.gethostname()}-{os.getpid()}"
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir()
        self._tokens = open(self.partial / TOKENS_FILE, "wb")
        self._lengths = open(self.partial / DOC_LENGTHS_FILE, "wb")
        self.num_tokens = 0
        self.num_documents = 0

    def __enter__(self) -> TokenCacheWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()

    def append(self, ids: np.ndarray, doc_lengths: np.ndarray) -> None:
        if ids.dtype != self.dtype:
            raise TypeError(f"token ids are {ids.dtype}, the cache stores {self.dtype}")
        if int(doc_lengths.sum()) != ids.size:
            raise ValueError(f"document lengths add up to {int(doc_lengths.sum())}, but {ids.size} ids were given")
        self._tokens.write(ids.tobytes())
        self._lengths.write(doc_lengths.astype(np.uint32).tobytes())
        self.num_tokens += ids.size
        self.num_documents += doc_lengths.size

    def written_doc_lengths(self) -> np.ndarray:
        self._lengths.flush()
        return np.fromfile(self.partial / DOC_LENGTHS_FILE, dtype=np.uint32).astype(np.int64)

    def finish(self, is_val: np.ndarray, meta: Mapping[str, Any]) -> TokenCache:
        if is_val.shape != (self.num_documents,):
            raise ValueError(f"split flags for {is_val.shape} documents, {self.num_documents} were written")
        for handle in (self._tokens, self._lengths):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        _fsync_write(self.partial / VAL_FLAGS_FILE, is_val.astype(np.uint8).tobytes())
        full_meta = {
            **meta,
            "key": self.key,
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "tokens": self.num_tokens,
            "documents": self.num_documents,
            "file_sizes": {
                name: (self.partial / name).stat().st_size for name in (TOKENS_FILE, DOC_LENGTHS_FILE, VAL_FLAGS_FILE)
            },
        }
        _fsync_write(self.partial / META_FILE, json.dumps(full_meta, indent=1, ensure_ascii=False).encode("utf-8"))
        final = self.cache_dir / self.key
        try:
            os.rename(self.partial, final)
        except OSError:
            # Another process published the same key first; theirs is as good as ours when complete.
            shutil.rmtree(self.partial, ignore_errors=True)
            existing = open_cache(self.cache_dir, self.key)
            if existing is None:
                raise
            return existing
        return TokenCache(final, full_meta)

    def abort(self) -> None:
        for handle in (self._tokens, self._lengths):
            if not handle.closed:
                handle.close()
        shutil.rmtree(self.partial, ignore_errors=True)
