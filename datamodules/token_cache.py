"""On-disk token cache: one memory-mapped token file per corpus + tokenizer + settings, never half-used.

nanoGPT-style: all documents' token ids (each framed BOS ... EOS) concatenated in one flat binary file
(``uint16`` when the vocabulary fits, else ``uint32``), beside the per-document token counts, the
validation split flags and a small ``meta.json``. An entry lives in ``<cache_dir>/<key>/`` where ``key`` is
the SHA-256 of everything that changes those files (not the block size: blocks are cut when read), so changed
inputs or settings get a new entry and unchanged ones are reused instantly.

Safety: an entry is built aside and renamed into place when complete (:mod:`tokenization.atomic_write`);
``meta.json`` records each file's size. An entry whose meta is missing, unreadable, for another key or whose
files disagree with the recorded sizes (a killed copy, a truncated file) is never read: it is deleted and rebuilt
when it carries zhllama's marker, refused in one line otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokenization.atomic_write import (
    MARKER,
    DiskFullError,
    OutputExistsError,
    atomic_directory,
    is_zhllama_output,
    remove_output,
)
from tokenization.cache_dir import default_cache_dir
from tokenization.errors import UserError

#: Bump when the layout, the meaning of the files or the key's contents change; part of every key.
FORMAT_VERSION = 2
CACHE_DIR_ENV = "ZHLLAMA_TOKEN_CACHE"
TOKENS_FILE = "tokens.bin"
DOC_LENGTHS_FILE = "doc_lengths.bin"  # uint32 token count of each kept document, framing included
VAL_FLAGS_FILE = "is_val.bin"  # uint8 per document: 1 = validation
META_FILE = "meta.json"
ENTRY_KIND = "token_cache"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$ZHLLAMA_TOKEN_CACHE``, ``$XDG_CACHE_HOME/zhllama/tokens`` or
    ``~/.cache/zhllama/tokens``."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir("tokens", CACHE_DIR_ENV)


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
    """The complete entry for ``key``, or None. A broken entry is removed (with a warning) so it gets rebuilt;
    one without zhllama's marker is left alone and refused."""
    entry = Path(cache_dir) / key
    if not entry.exists():
        return None
    problem = _entry_problem(entry, key)
    if problem is None:
        return TokenCache(entry, json.loads((entry / META_FILE).read_text(encoding="utf-8")))
    if not is_zhllama_output(entry) and entry.exists():
        raise UserError(
            f"{entry}: token cache entry is unusable ({problem}) and not marked as zhllama's (no {MARKER}); "
            "delete it yourself or choose another --cache_dir"
        )
    warnings.warn(f"token cache {entry} is incomplete or corrupt ({problem}); deleting and rebuilding it", stacklevel=2)
    remove_output(entry, missing_ok=True)
    return None


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class TokenCacheWriter:
    """Writes one entry's files into a staging directory (see :func:`build_cache`, which publishes it).

    ``append`` takes already-framed token ids of whole documents in corpus order; ``finish`` writes the split
    flags and the meta.
    """

    def __init__(self, staging: Path, key: str, dtype: np.dtype) -> None:
        self.staging = Path(staging)
        self.key = key
        self.dtype = np.dtype(dtype)
        self._tokens = open(self.staging / TOKENS_FILE, "wb")
        self._lengths = open(self.staging / DOC_LENGTHS_FILE, "wb")
        self.num_tokens = 0
        self.num_documents = 0

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
        return np.fromfile(self.staging / DOC_LENGTHS_FILE, dtype=np.uint32).astype(np.int64)

    def finish(self, is_val: np.ndarray, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Writes the split flags and ``meta.json``; returns the full meta."""
        if is_val.shape != (self.num_documents,):
            raise ValueError(f"split flags for {is_val.shape} documents, {self.num_documents} were written")
        for handle in (self._tokens, self._lengths):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        _fsync_write(self.staging / VAL_FLAGS_FILE, is_val.astype(np.uint8).tobytes())
        full_meta = {
            **meta,
            "key": self.key,
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "tokens": self.num_tokens,
            "documents": self.num_documents,
            "file_sizes": {
                name: (self.staging / name).stat().st_size for name in (TOKENS_FILE, DOC_LENGTHS_FILE, VAL_FLAGS_FILE)
            },
        }
        _fsync_write(self.staging / META_FILE, json.dumps(full_meta, indent=1, ensure_ascii=False).encode("utf-8"))
        return full_meta

    def close(self) -> None:
        """Closes the files of a failed build; a full disk makes the close fail again, which changes nothing."""
        for handle in (self._tokens, self._lengths):
            with suppress(OSError):
                handle.close()


#: Fills a writer with the corpus and returns (validation flags per document, meta to record).
CacheFiller = Callable[[TokenCacheWriter], tuple[np.ndarray, Mapping[str, Any]]]


def build_cache(cache_dir: Path, key: str, dtype: np.dtype, fill: CacheFiller) -> TokenCache:
    """Builds the entry for ``key`` aside and publishes it at once; safe from several processes at a time.

    When another process published the same key first, its complete entry is used and this one dropped.
    """
    cache_dir = Path(cache_dir)
    entry = cache_dir / key
    try:
        with atomic_directory(entry, kind=ENTRY_KIND, replace=False) as staging:
            writer = TokenCacheWriter(staging, key, dtype)
            try:
                is_val, meta = fill(writer)
                full_meta = writer.finish(is_val, meta)
            finally:
                writer.close()
    except OutputExistsError:
        existing = open_cache(cache_dir, key)
        if existing is None:
            raise
        return existing
    except DiskFullError as exc:
        raise DiskFullError(f"{exc}; --cache_dir moves the token cache") from exc.__cause__
    return TokenCache(entry, full_meta)
