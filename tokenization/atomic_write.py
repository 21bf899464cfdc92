"""Every output zhllama writes goes through here: built aside in the same directory, then renamed into place.

A rename within one directory is atomic, so a reader never sees a half-written output and a crash or a full disk
leaves the previous one intact. A directory output carries zhllama's marker file, and only an empty directory or
one holding that marker is ever replaced or deleted: nothing zhllama did not write is deleted. An output may not
be, or contain, one of the command's own inputs (an export into the checkpoint directory it reads from).
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tokenization.errors import UserError

#: The file that marks a directory as written by zhllama (and says what it is).
MARKER = "zhllama_output.json"
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class OutputRefusedError(UserError):
    """The output path holds something zhllama did not write, or one of the command's inputs."""


class OutputExistsError(FileExistsError):
    """Under ``replace=False``: another process published the same output first (theirs is kept)."""


class DiskFullError(UserError):
    """The device ran out of space while an output was written; the previous output is intact."""


def is_zhllama_output(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def read_marker(path: Path) -> dict:
    return json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))


def _marked_kind(folder: Path) -> str | None:
    try:
        record = read_marker(folder)
    except (OSError, ValueError):
        return None
    return record.get("kind") if isinstance(record, dict) else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(output: Path, inputs: Iterable[Path] = (), directory: bool = True, kind: str | None = None) -> Path:
    """``output`` resolved, or ``OutputRefusedError`` naming it and the fix. With ``kind``, an earlier zhllama
    output of another kind (an export where a tokenizer goes) is refused too."""
    output = Path(output).expanduser().resolve()
    for source in inputs:
        source = Path(source).expanduser().resolve()
        if _inside(source, output):
            raise OutputRefusedError(f"{output}: holds this command's input {source}; choose another output")
    if directory:
        if output.exists() and not output.is_dir():
            raise OutputRefusedError(f"{output}: exists and is not a directory; choose another output")
        if output.is_dir() and any(output.iterdir()) and not is_zhllama_output(output):
            raise OutputRefusedError(
                f"{output}: a non-empty directory that zhllama did not write (no {MARKER}); choose a new or empty "
                "directory (zhllama replaces only its own outputs)"
            )
        if kind is not None and output.is_dir() and is_zhllama_output(output) and _marked_kind(output) != kind:
            raise OutputRefusedError(
                f"{output}: holds a zhllama {_marked_kind(output) or 'unknown'} output, not a {kind}; choose another "
                "directory"
            )
    elif output.is_dir():
        raise OutputRefusedError(f"{output}: is a directory; name a file")
    return output


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_marker(folder: Path, record: dict) -> None:
    (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _remove_abandoned_staging(output: Path) -> None:
    """Deletes staging directories of ``output`` whose writer, on this host, is gone (a killed run)."""
    host = socket.gethostname()
    for candidate in output.parent.glob(f".{glob.escape(output.name)}.*.partial"):
        try:
            record = read_marker(candidate)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("state") != "staging" or record.get("host") != host:
            continue
        if isinstance(record.get("pid"), int) and not _process_alive(record["pid"]):
            shutil.rmtree(candidate, ignore_errors=True)


def _disk_full(output: Path) -> DiskFullError:
    return DiskFullError(
        f"{output.parent}: no space left on the device while writing {output.name}; free space there or write "
        "to another directory (nothing was changed)"
    )


@contextmanager
def atomic_directory(output: Path, kind: str, inputs: Iterable[Path] = (), replace: bool = True) -> Iterator[Path]:
    """Yields a staging directory beside ``output`` (holding only the marker); on success it replaces ``output``
    at once, its marker saying ``kind``; on any error it vanishes and ``output`` is untouched.

    ``replace=False``: an ``output`` that another process published meanwhile wins; the staging directory is
    dropped and :class:`OutputExistsError` raised, so the caller can use theirs.
    """
    output = check_output(output, inputs, kind=kind)
    staging: Path | None = None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_staging(output)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
        _write_marker(staging, {"kind": kind, "state": "staging", "host": socket.gethostname(), "pid": os.getpid()})
        yield staging
        _write_marker(staging, {"kind": kind, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        staging.chmod(0o755)
        if not replace:
            try:
                os.rename(staging, output)  # refuses a non-empty output: another process published first
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise OutputExistsError(f"{output}: published meanwhile by another process") from exc
                raise
        elif output.exists():
            check_output(output, kind=kind)  # still ours (or empty) at the moment of the swap
            retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
            os.replace(output, retired / output.name)
            try:
                os.replace(staging, output)
            except BaseException:
                os.replace(retired / output.name, output)  # put the previous output back
                retired.rmdir()
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, output)
        _fsync_directory(output.parent)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise _disk_full(output) from exc
        raise


@contextmanager
def atomic_file(path: Path, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yields a temporary path in ``path``'s directory; on success it is fsynced and renamed to ``path``
    (replacing it at once), on any error it is removed and ``path`` is untouched."""
    path = check_output(path, inputs, directory=False)
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        temporary = Path(name)
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except BaseException as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise _disk_full(path) from exc
        raise


def remove_output(output: Path, missing_ok: bool = False) -> None:
    """Deletes a directory zhllama wrote (it carries the marker); anything else is refused.

    The marker goes last, so a removal cut short leaves a directory that can still be removed.
    """
    output = Path(output).expanduser().resolve()
    if missing_ok and not output.exists():
        return
    if not is_zhllama_output(output):
        raise OutputRefusedError(f"{output}: not written by zhllama (no {MARKER}); refusing to delete it")
    for child in output.iterdir():
        if child.name == MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (output / MARKER).unlink()
    output.rmdir()
