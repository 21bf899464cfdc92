"""``AtomicCheckpointIO``: Lightning checkpoints written aside in their own directory, fsynced, then renamed.

Lightning's default writes through a temporary file in ``$TMPDIR`` and moves it across filesystems, so a full
disk could leave a truncated ``last.ckpt``; here a failed save leaves the previous file intact and no temporary
file behind. Loading is ``weights_only`` and a bad file is one ``UserError`` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_modules.run_checkpoints import read_checkpoint
from tokenization.atomic_write import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_file(Path(path)) as temporary:
            torch.save(checkpoint, temporary)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> Any:
        """Always ``weights_only``: a checkpoint is data, never code, whatever the caller asks for."""
        return read_checkpoint(Path(path), map_location=map_location)
