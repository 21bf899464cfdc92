"""Reading a run's checkpoints safely, and which one is "the newest" (what ``init_from RUN_DIR`` and
``--ckpt_path last`` use).

A run directory is a stage's ``trainer.default_root_dir``; its checkpoints live in ``checkpoints/``. The newest is
the readable checkpoint with the highest training step (file times break ties only: a copied run directory has
copy-time mtimes). A checkpoint that cannot be read (truncated by a full disk, not a zip, a pickle that
``weights_only`` refuses) is skipped with a warning naming it, so one bad file never hides an intact earlier one.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from tokenization.errors import UserError

CHECKPOINT_DIR = "checkpoints"
SUFFIX = ".ckpt"


class UnreadableCheckpointError(UserError):
    """A checkpoint file is truncated, not a checkpoint, or holds objects a ``weights_only`` load refuses."""


class UnreadableCheckpointWarning(UserWarning):
    """A checkpoint file was skipped because it could not be read."""


def read_checkpoint(path: Path, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``, or ``UnreadableCheckpointError`` naming the file and why.

    With ``mmap`` only the pickled index is read and tensors are mapped lazily, cheap even at 7B scale."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise UnreadableCheckpointError(f"{path}: not a complete checkpoint (truncated, or not a torch.save zip "
                                        "archive); use an earlier checkpoint of the run")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, KeyError... for bad files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnreadableCheckpointError(f"{path}: unreadable checkpoint ({reason})") from error


def checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory of a run directory, or ``path`` itself when it already is one."""
    path = Path(path).expanduser().resolve()
    return path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path


def checkpoint_step(path: Path) -> int:
    """The training step a Lightning checkpoint was saved at; ``UnreadableCheckpointError`` if unreadable."""
    checkpoint = read_checkpoint(path, mmap=True)
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpointError(f"{path}: holds a {type(checkpoint).__name__}, not a Lightning checkpoint")
    return int(checkpoint.get("global_step", -1))


def newest_checkpoint(path: Path) -> Path:
    """The newest complete, readable ``*.ckpt`` of a run directory (or of its ``checkpoints/`` directory)."""
    folder = checkpoint_dir(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such run or checkpoint directory; name a stage's trainer.default_root_dir")
    candidates = sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())
    if not candidates:
        raise UserError(f"{folder}: holds no {SUFFIX} checkpoint; has this stage saved one yet?")
    readable: list[tuple[int, float, Path]] = []
    for candidate in candidates:
        try:
            readable.append((checkpoint_step(candidate), candidate.stat().st_mtime, candidate))
        except UnreadableCheckpointError as error:
            warnings.warn(f"{error}; skipped", UnreadableCheckpointWarning, stacklevel=2)
    if not readable:
        raise UserError(f"{folder}: none of its {len(candidates)} checkpoints can be read (see the warnings above); "
                        "start the stage again or restore the directory from a backup")
    return max(readable)[2]
