"""The one write-aside-then-rename helper: all or nothing, only zhllama's own outputs replaced or deleted."""

from __future__ import annotations

import ast
import json
import os
import socket
from pathlib import Path

import pytest

from tokenization.atomic_write import (
    MARKER,
    DiskFullError,
    OutputExistsError,
    OutputRefusedError,
    atomic_directory,
    atomic_file,
    read_marker,
    remove_output,
)
from tokenization.errors import UserError

DEAD_PID = 2**22 + 12345  # above pid_max's default: no such process


def write_output(out: Path, content: str, replace: bool = True) -> None:
    with atomic_directory(out, kind="test", replace=replace) as staging:
        (staging / "data.txt").write_text(content)


def test_success_replaces_a_previous_output_at_once_and_marks_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "old")
    write_output(out, "new")
    assert (out / "data.txt").read_text() == "new"
    assert read_marker(out)["kind"] == "test" and "state" not in read_marker(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or retired leftovers


def test_failure_leaves_the_previous_output_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_directory(out, kind="test") as staging:
            (staging / "data.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert (out / "data.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("names", [["notes.txt"], ["tokenizer.model", "tokenizer.json", "merge_report.json"]])
def test_a_directory_zhllama_did_not_write_is_never_replaced(tmp_path: Path, names: list[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_text("the user's")
    with pytest.raises(OutputRefusedError, match=f"out: a non-empty directory that zhllama did not write .*{MARKER}"):
        write_output(out, "new")
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all((out / name).read_text() == "the user's" for name in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_of_another_kind_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "an export")
    with pytest.raises(OutputRefusedError, match="out: holds a zhllama test output, not a tokenizer"):
        with atomic_directory(out, kind="tokenizer") as staging:
            (staging / "tokenizer.json").write_text("{}")
    assert (out / "data.txt").read_text() == "an export"


def test_an_output_that_holds_an_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "run" / "last.ckpt"
    source.parent.mkdir()
    source.write_text("weights")
    for out in (tmp_path / "run", source):
        with pytest.raises(OutputRefusedError, match="holds this command's input"):
            with atomic_directory(out, kind="test", inputs=[source]):
                pass
    assert source.read_text() == "weights"


def test_the_previous_output_is_put_back_when_the_final_rename_fails(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    write_output(out, "old")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.endswith(".partial") and Path(dst) == out:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_output(out, "new")
    assert (out / "data.txt").read_text() == "old" and read_marker(out)["kind"] == "test"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_replace_an_output_published_meanwhile_wins(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError):
        with atomic_directory(out, kind="test", replace=False) as staging:
            (staging / "data.txt").write_text("second")
            write_output(out, "first")  # another process publishes while this one builds
    assert (out / "data.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staging_of_a_killed_writer_is_removed_others_are_kept(tmp_path: Path) -> None:
    host = socket.gethostname()
    leftovers = {
        "dead": {"kind": "test", "state": "staging", "host": host, "pid": DEAD_PID},
        "alive": {"kind": "test", "state": "staging", "host": host, "pid": os.getppid()},
        "other_host": {"kind": "test", "state": "staging", "host": host + "-elsewhere", "pid": DEAD_PID},
    }
    for name, record in leftovers.items():
        folder = tmp_path / f".out.{name}.partial"
        folder.mkdir()
        (folder / MARKER).write_text(json.dumps(record))
    unmarked = tmp_path / ".out.unmarked.partial"
    unmarked.mkdir()
    (unmarked / "notes.txt").write_text("the user's")
    write_output(tmp_path / "out", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.alive.partial", ".out.other_host.partial", ".out.unmarked.partial", "out"
    ]


def test_a_full_disk_is_one_line_naming_the_directory_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, "old")
    with pytest.raises(DiskFullError) as info:
        with atomic_directory(out, kind="test") as staging:
            (staging / "data.txt").write_text("partial")
            with open("/dev/full", "wb") as full:  # the device reports ENOSPC, as a full disk does
                full.write(b"x" * 10)
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message
    assert message.startswith(f"{tmp_path}: no space left") and "free space" in message
    assert (out / "data.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_file_all_or_nothing(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "answers" / "out.jsonl"
    with atomic_file(target) as partial:
        partial.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as partial:
            partial.write_text("half")
            raise RuntimeError("interrupted")
    with pytest.raises(DiskFullError, match="free space"):
        with atomic_file(target) as partial, open("/dev/full", "wb") as full:
            full.write(b"x")
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.jsonl"]
    with pytest.raises(OutputRefusedError, match="is a directory"):
        with atomic_file(tmp_path / "answers"):
            pass
    with pytest.raises(OutputRefusedError, match="holds this command's input"):
        with atomic_file(target, inputs=[target]):
            pass


def test_remove_output_deletes_only_marked_directories(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    write_output(mine, "x")
    (mine / "sub").mkdir()
    (mine / "sub" / "f").write_text("y")
    theirs.mkdir()
    (theirs / "notes.txt").write_text("the user's")
    with pytest.raises(OutputRefusedError, match="not written by zhllama"):
        remove_output(theirs)
    remove_output(mine)
    assert not mine.exists() and (theirs / "notes.txt").read_text() == "the user's"
    remove_output(mine, missing_ok=True)
    with pytest.raises(OutputRefusedError):
        remove_output(mine)


def rmtree_calls(source: str) -> list[int]:
    """Line numbers of every ``rmtree(...)`` / ``x.rmtree(...)`` call in ``source``."""
    return [
        node.lineno for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) == "rmtree" or getattr(node.func, "id", None) == "rmtree")
    ]


def test_only_the_atomic_write_helper_deletes_directory_trees() -> None:
    assert rmtree_calls("import shutil\nshutil.rmtree(p)\nfrom shutil import rmtree\nrmtree(q)\n") == [2, 4]
    root = Path(__file__).resolve().parents[2]
    allowed = root / "tokenization" / "atomic_write.py"
    offenders = [
        f"{path.relative_to(root)}:{line}"
        for package in ("tokenization", "datamodules", "lightning_modules", "callbacks", "cli")
        for path in sorted((root / package).rglob("*.py")) if path != allowed
        for line in rmtree_calls(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "delete through tokenization.atomic_write.remove_output (marked directories only)"
