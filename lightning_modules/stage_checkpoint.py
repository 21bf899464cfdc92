"""Reading what a stage wrote: its checkpoint file (or its run directory's newest one), ``weights_only``, refused in
one line unless it is a ``zhllama fit`` checkpoint of this format; and the lineage a next stage starts from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_modules.deepspeed_checkpoint import is_deepspeed_checkpoint, read_deepspeed_checkpoint
from lightning_modules.run_checkpoints import newest_checkpoint, read_checkpoint, read_client_state
from lightning_modules.stage_lineage import Base, StageLineage, is_pretrained_model
from tokenization.errors import UserError

#: The checkpoint entry zhllama adds to Lightning's: freeze policy, vocabulary, lineage.
CHECKPOINT_KEY = "zhllama"
#: Version of that entry: 2 carries the base fingerprint and the earlier stages' trained tensors.
CHECKPOINT_FORMAT = 2


def checkpoint_file(source: str | os.PathLike) -> Path:
    """``source`` as an absolute checkpoint: a file or a DeepSpeed checkpoint directory as given, or a run
    directory's newest readable checkpoint file."""
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        return path if is_deepspeed_checkpoint(path) else newest_checkpoint(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file, run directory or model directory")
    return path


def read_stage_checkpoint(path: Path, mmap: bool = False) -> dict[str, Any]:
    """A ``zhllama fit`` checkpoint (a file, or a DeepSpeed directory consolidated), loaded ``weights_only``.
    ``mmap`` maps a file's tensors instead of reading them: for a short read only, since a file rewritten in
    place would change them underneath."""
    checkpoint = read_deepspeed_checkpoint(path) if is_deepspeed_checkpoint(path) else read_checkpoint(path, mmap=mmap)
    return _checked(checkpoint, path, "state_dict")


def read_stage_record(path: Path, mmap: bool = False) -> dict[str, Any]:
    """The ``zhllama`` record of a ``zhllama fit`` checkpoint, for what needs no trained tensor (resuming, export's
    checks): a DeepSpeed directory's shards are not consolidated for it."""
    return _checked(read_client_state(path, mmap=mmap), path)[CHECKPOINT_KEY]


def _checked(checkpoint: Any, path: Path, *keys: str) -> dict[str, Any]:
    """``checkpoint`` if ``zhllama fit`` wrote it in this format (its record, hyper-parameters and ``keys``)."""
    record = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if record is None or any(key not in checkpoint for key in ("hyper_parameters", *keys)):
        raise UserError(f"{path}: not a checkpoint written by `zhllama fit` (no zhllama record); pass a stage's "
                        ".ckpt, its run directory or an exported model directory")
    if record.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: written by an older zhllama (checkpoint format {record.get('format', 1)}, this "
                        f"one reads {CHECKPOINT_FORMAT}); restore and export it with the zhllama that wrote it")
    return checkpoint


def lineage_after(source: str | os.PathLike) -> StageLineage:
    """Where a stage that starts from ``source`` starts (what ``model.init_from`` reads, once): a model directory
    or ``.gguf`` file is a new base; a checkpoint or run directory adds its stage to that stage's own lineage."""
    path = Path(source).expanduser().resolve()
    if is_pretrained_model(path):
        return StageLineage(Base.of(str(path), None, 0))
    checkpoint = read_stage_checkpoint(checkpoint_file(path))
    return StageLineage.after(checkpoint[CHECKPOINT_KEY], checkpoint["state_dict"])
