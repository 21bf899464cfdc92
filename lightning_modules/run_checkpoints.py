"""Reading a run's checkpoints safely, and which one is "the newest" (what ``init_from RUN_DIR`` and
``--ckpt_path last`` use).

A run directory is a stage's ``trainer.default_root_dir``; its checkpoints live in ``checkpoints/``. The newest is
the readable checkpoint with the highest training step (file times break ties only: a copied run directory has
copy-time mtimes). A checkpoint that cannot be read (truncated by a full disk, not a zip, a pickle that
``weights_only`` refuses) is skipped with a warning naming it, so one bad file never hides an intact earlier one.

A checkpoint is a file, or under DeepSpeed a directory ``<name>.ckpt/``: ``latest`` names the tag folder holding
the model states file (rank 0's; Lightning's state is in it) and one optimizer-state file per rank. Its step is
read from the model states file, ``weights_only`` with DeepSpeed's few own classes allowed.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tokenization.errors import UserError

CHECKPOINT_DIR = "checkpoints"
SUFFIX = ".ckpt"
DEEPSPEED_LATEST = "latest"
#: Rank 0's model states file in a DeepSpeed tag folder: ZeRO-1/2, then ZeRO-3 (one per rank there).
MODEL_STATES = ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_model_states.pt")


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


def is_deepspeed_checkpoint(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / DEEPSPEED_LATEST).is_file()


def is_checkpoint(path: Path) -> bool:
    """A checkpoint file or DeepSpeed checkpoint directory (not a run directory)."""
    return Path(path).is_file() or is_deepspeed_checkpoint(path)


def deepspeed_model_states(path: Path) -> Path:
    """The model states file of the DeepSpeed checkpoint directory ``path``; ``UnreadableCheckpointError`` if
    the save did not get that far."""
    folder = Path(path) / (Path(path) / DEEPSPEED_LATEST).read_text(encoding="utf-8").strip()
    for name in MODEL_STATES:
        if (folder / name).is_file():
            return folder / name
    raise UnreadableCheckpointError(f"{path}: incomplete DeepSpeed checkpoint (no {folder.name}/{MODEL_STATES[0]}); "
                                    "use an earlier checkpoint of the run")


@contextmanager
def deepspeed_classes_allowed() -> Iterator[None]:
    """``weights_only`` loads inside accept the DeepSpeed classes its checkpoint files hold (loss scaler, ZeRO
    stage, fragment address); ``UserError`` without the deepspeed extra."""
    try:
        from deepspeed.runtime.fp16.loss_scaler import LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address
    except ImportError as error:
        raise UserError("reading a DeepSpeed checkpoint directory needs the deepspeed extra "
                        "(pip install -e '.[deepspeed]')") from error
    with torch.serialization.safe_globals([LossScaler, ZeroStageEnum, fragment_address]):
        yield


def read_client_state(path: Path, mmap: bool = False) -> Any:
    """A checkpoint file, or a DeepSpeed directory's model states file alone (Lightning's checkpoint with the
    trained tensors left in the ZeRO partitions, not consolidated), loaded ``weights_only``."""
    if not is_deepspeed_checkpoint(path):
        return read_checkpoint(path, mmap=mmap)
    with deepspeed_classes_allowed():
        return read_checkpoint(deepspeed_model_states(path), mmap=mmap)


def checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory of a run directory, or ``path`` itself when it already is one."""
    path = Path(path).expanduser().resolve()
    return path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path


def checkpoint_step(path: Path) -> int:
    """The training step a Lightning checkpoint (file or DeepSpeed directory) was saved at;
    ``UnreadableCheckpointError`` if unreadable."""
    checkpoint = read_client_state(path, mmap=True)
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpointError(f"{path}: holds a {type(checkpoint).__name__}, not a Lightning checkpoint")
    return int(checkpoint.get("global_step", -1))


def newest_checkpoint(path: Path) -> Path:
    """The newest complete, readable ``*.ckpt`` (file or DeepSpeed directory) of a run directory (or of its
    ``checkpoints/`` directory)."""
    folder = checkpoint_dir(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such run or checkpoint directory; name a stage's trainer.default_root_dir")
    candidates = sorted(p for p in folder.glob(f"*{SUFFIX}") if is_checkpoint(p))
    if not candidates:
        raise UserError(f"{folder}: holds no {SUFFIX} checkpoint; has this stage saved one yet?")
    readable: list[tuple[int, float, Path]] = []
    for candidate in candidates:
        try:
            stamp = (deepspeed_model_states(candidate) if candidate.is_dir() else candidate).stat().st_mtime
            readable.append((checkpoint_step(candidate), stamp, candidate))
        except UnreadableCheckpointError as error:
            warnings.warn(f"{error}; skipped", UnreadableCheckpointWarning, stacklevel=2)
    if not readable:
        raise UserError(f"{folder}: none of its {len(candidates)} checkpoints can be read (see the warnings above); "
                        "start the stage again or restore the directory from a backup")
    return max(readable)[2]
