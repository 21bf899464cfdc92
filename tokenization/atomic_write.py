"""Every output zhllama writes goes through here: built aside in the same directory, then renamed into place.

A rename within one directory is atomic, so a reader never sees a half-written output and a crash or a full disk
leaves the previous one intact. A directory output carries zhllama's marker file, and only an empty directory or
one holding that marker is ever replaced: nothing zhllama did not write is deleted. An output may not be, or
contain, one of the command's own inputs (an export into the checkpoint directory it reads from).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tokenization.errors import UserError

#: The file that marks a directory as written by zhllama (and says what it is).
MARKER = "zhllama_output.json"


class OutputRefusedError(UserError):
    """The output path holds something zhllama did not write, or one of the command's inputs."""


def is_zhllama_output(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def read_marker(path: Path) -> dict:
    return json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(output: Path, inputs: Iterable[Path] = (), directory: bool = True) -> Path:
    """``output`` resolved, or ``OutputRefusedError`` naming it and the fix."""
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
    elif output.is_dir():
        raise OutputRefusedError(f"{output}: is a directory; name a file")
    return output


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_directory(output: Path, kind: str, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yields an empty staging directory beside ``output``; on success it (with the marker, saying ``kind``)
    replaces ``output`` at once, on any error it vanishes and ``output`` is untouched."""
    output = check_output(output, inputs)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        yield staging
        record = {"kind": kind, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (staging / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        staging.chmod(0o755)
        if output.exists():
            check_output(output)  # still ours (or empty) at the moment of the swap
            retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
            os.replace(output, retired / output.name)
            try:
                os.replace(staging, output)
            except BaseException:
                os.replace(retired / output.name, output)  # put the previous output back
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, output)
        _fsync_directory(output.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: Path, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yields a temporary path in ``path``'s directory; on success it is fsynced and renamed to ``path``
    (replacing it at once), on any error it is removed and ``path`` is untouched."""
    path = check_output(path, inputs, directory=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_output(output: Path) -> None:
    """Deletes a directory zhllama wrote (it carries the marker); anything else is refused."""
    output = Path(output).resolve()
    if not is_zhllama_output(output):
        raise OutputRefusedError(f"{output}: not written by zhllama (no {MARKER}); refusing to delete it")
    shutil.rmtree(output)
