"""Token cache entries: published atomically, reused when complete, deleted and rebuilt when not."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from datamodules import token_cache
from datamodules.token_cache import (
    DOC_LENGTHS_FILE,
    META_FILE,
    TOKENS_FILE,
    TokenCacheWriter,
    build_cache,
    cache_key,
    cache_root,
    open_cache,
    token_dtype,
)
from tokenization.atomic_write import MARKER, DiskFullError
from tokenization.errors import UserError

KEY = cache_key({"what": "test"})


def fill_three_documents(note: str = "x"):
    def fill(writer: TokenCacheWriter):
        writer.append(np.array([1, 5, 6, 2, 1, 7, 2], dtype=np.uint16), np.array([4, 3]))
        writer.append(np.array([1, 9, 9, 9, 2], dtype=np.uint16), np.array([5]))
        return np.array([False, True, False]), {"note": note}

    return fill


def write_entry(root: Path, key: str = KEY, note: str = "x") -> Path:
    return build_cache(root, key, np.dtype(np.uint16), fill_three_documents(note)).path


def test_round_trip(tmp_path: Path) -> None:
    path = write_entry(tmp_path)
    cache = open_cache(tmp_path, KEY)
    assert cache is not None and cache.path == path == tmp_path / KEY
    assert cache.tokens().tolist() == [1, 5, 6, 2, 1, 7, 2, 1, 9, 9, 9, 2]
    assert cache.doc_lengths().tolist() == [4, 3, 5]
    assert cache.is_val().tolist() == [False, True, False]
    assert cache.meta["note"] == "x" and cache.meta["tokens"] == 12 and cache.meta["documents"] == 3
    assert (path / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == [KEY]


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


def test_an_unusable_entry_zhllama_did_not_mark_is_refused_not_deleted(tmp_path: Path) -> None:
    entry = tmp_path / KEY
    entry.mkdir()
    (entry / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match=f"{KEY}: token cache entry is unusable .*no {MARKER}"):
        open_cache(tmp_path, KEY)
    assert (entry / "notes.txt").read_text() == "the user's"


def test_a_cache_dir_holding_the_users_files_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the user's")
    (tmp_path / "project").mkdir()
    write_entry(tmp_path)
    with pytest.warns(UserWarning):
        os.truncate(tmp_path / KEY / TOKENS_FILE, 2)
        assert open_cache(tmp_path, KEY) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "project"]
    assert (tmp_path / "notes.txt").read_text() == "the user's"


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def dies(writer: TokenCacheWriter):
        writer.append(np.array([1, 2], dtype=np.uint16), np.array([2]))
        raise RuntimeError("tokenizer died")

    with pytest.raises(RuntimeError, match="tokenizer died"):
        build_cache(tmp_path, KEY, np.dtype(np.uint16), dies)
    assert list(tmp_path.iterdir()) == []
    assert open_cache(tmp_path, KEY) is None


def test_a_failed_publish_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="rename failed"):
        write_entry(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_removes_the_staging_dir_though_closing_fails_again(tmp_path, monkeypatch) -> None:
    real_open = open

    def tokens_on_a_full_disk(path, mode="r", *args, **kwargs):
        if Path(path).name == TOKENS_FILE:
            return real_open("/dev/full", mode, *args, **kwargs)  # every flush and the close raise ENOSPC
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(token_cache, "open", tokens_on_a_full_disk, raising=False)
    with pytest.raises(DiskFullError) as info:
        write_entry(tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'cache'}: no space left") and "free space" in message
    assert "--cache_dir" in message and "\n" not in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_second_builder_uses_the_first_ones_complete_entry(tmp_path: Path) -> None:
    def slow_rank(writer: TokenCacheWriter):
        write_entry(tmp_path, note="first")  # the other rank finishes while this one is still writing
        return fill_three_documents("second")(writer)

    cache = build_cache(tmp_path, KEY, np.dtype(np.uint16), slow_rank)
    assert cache.path == tmp_path / KEY and cache.meta["note"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == [KEY]


def test_killed_builds_staging_dir_is_never_used_and_gets_cleaned(tmp_path: Path) -> None:
    leftover = tmp_path / f".{KEY}.abc123.partial"
    leftover.mkdir()
    (leftover / TOKENS_FILE).write_bytes(b"\x01\x00")
    record = {"kind": "token_cache", "state": "staging", "host": socket.gethostname(), "pid": 2**22 + 12345}
    (leftover / MARKER).write_text(json.dumps(record))
    assert open_cache(tmp_path, KEY) is None
    write_entry(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [KEY]


def test_writer_checks_its_inputs(tmp_path: Path) -> None:
    writer = TokenCacheWriter(tmp_path, KEY, np.dtype(np.uint16))
    with pytest.raises(TypeError, match="uint32"):
        writer.append(np.array([1], dtype=np.uint32), np.array([1]))
    with pytest.raises(ValueError, match="add up to 3"):
        writer.append(np.array([1, 2], dtype=np.uint16), np.array([3]))
    with pytest.raises(ValueError, match="split flags for"):
        writer.finish(np.array([True]), {})
    writer.close()


def test_key_and_dtype_and_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1}) != cache_key({"a": 1, "b": 3})
    assert token_dtype(55296) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    monkeypatch.setenv("ZHLLAMA_TOKEN_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_root(str(tmp_path / "given")) == tmp_path / "given"
    monkeypatch.delenv("ZHLLAMA_TOKEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "zhllama" / "tokens"
