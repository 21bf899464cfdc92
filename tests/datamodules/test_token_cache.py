"""Token cache entries: published atomically, reused when complete, deleted and rebuilt when not."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from datamodules.token_cache import (
    DOC_LENGTHS_FILE,
    META_FILE,
    TOKENS_FILE,
    TokenCacheWriter,
    cache_key,
    default_cache_dir,
    open_cache,
    token_dtype,
)

KEY = cache_key({"what": "test"})


def write_entry(root: Path, key: str = KEY) -> Path:
    with TokenCacheWriter(root, key, np.dtype(np.uint16)) as writer:
        writer.append(np.array([1, 5, 6, 2, 1, 7, 2], dtype=np.uint16), np.array([4, 3]))
        writer.append(np.array([1, 9, 9, 9, 2], dtype=np.uint16), np.array([5]))
        cache = writer.finish(np.array([False, True, False]), {"note": "x"})
    return cache.path


def test_round_trip(tmp_path: Path) -> None:
    path = write_entry(tmp_path)
    cache = open_cache(tmp_path, KEY)
    assert cache is not None and cache.path == path == tmp_path / KEY
    assert cache.tokens().tolist() == [1, 5, 6, 2, 1, 7, 2, 1, 9, 9, 9, 2]
    assert cache.doc_lengths().tolist() == [4, 3, 5]
    assert cache.is_val().tolist() == [False, True, False]
    assert cache.meta["note"] == "x" and cache.meta["tokens"] == 12 and cache.meta["documents"] == 3
    assert not list(tmp_path.glob("*.partial-*"))


def test_missing_key_is_none(tmp_path: Path) -> None:
    assert open_cache(tmp_path, KEY) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: (p / META_FILE).unlink(),
        lambda p: (p / META_FILE).write_text("{not json"),
        lambda p: os.truncate(p / TOKENS_FILE, 6),
        lambda p: (p / DOC_LENGTHS_FILE).unlink(),
        lambda p: (p / META_FILE).write_text(json.dumps({**json.loads((p / META_FILE).read_text()), "key": "other"})),
    ],
    ids=["no-meta", "bad-meta", "truncated-tokens", "missing-lengths", "foreign-meta"],
)
def test_damaged_entry_is_deleted_not_used(tmp_path: Path, damage) -> None:
    path = write_entry(tmp_path)
    damage(path)
    with pytest.warns(UserWarning, match="incomplete or corrupt"):
        assert open_cache(tmp_path, KEY) is None
    assert not path.exists()
    write_entry(tmp_path)  # and it can be rebuilt in place
    assert open_cache(tmp_path, KEY) is not None


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="tokenizer died"):
        with TokenCacheWriter(tmp_path, KEY, np.dtype(np.uint16)) as writer:
            writer.append(np.array([1, 2], dtype=np.uint16), np.array([2]))
            raise RuntimeError("tokenizer died")
    assert list(tmp_path.iterdir()) == []
    assert open_cache(tmp_path, KEY) is None


def test_killed_builds_partial_dir_is_never_used_and_gets_cleaned(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345  # above pid_max's default; no such process
    leftover = tmp_path / f"{KEY}.partial-{socket.gethostname()}-{dead_pid}"
    leftover.mkdir()
    (leftover / TOKENS_FILE).write_bytes(b"\x01\x00")
    assert open_cache(tmp_path, KEY) is None
    write_entry(tmp_path)
    assert not leftover.exists()


def test_writer_checks_its_inputs(tmp_path: Path) -> None:
    with TokenCacheWriter(tmp_path, KEY, np.dtype(np.uint16)) as writer:
        with pytest.raises(TypeError, match="uint32"):
            writer.append(np.array([1], dtype=np.uint32), np.array([1]))
        with pytest.raises(ValueError, match="add up to 3"):
            writer.append(np.array([1, 2], dtype=np.uint16), np.array([3]))
        writer.abort()


def test_key_and_dtype_and_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1}) != cache_key({"a": 1, "b": 3})
    assert token_dtype(55296) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    monkeypatch.setenv("ZHLLAMA_TOKEN_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ZHLLAMA_TOKEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "zhllama" / "tokens"
