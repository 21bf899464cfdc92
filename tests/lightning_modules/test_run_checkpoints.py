"""A run's newest checkpoint: by training step (not file time), skipping unreadable files with a warning."""

import os
from pathlib import Path

import pytest
import torch

from lightning_modules.run_checkpoints import (
    UnreadableCheckpointError,
    UnreadableCheckpointWarning,
    newest_checkpoint,
    read_checkpoint,
)
from tokenization.errors import UserError


class RunsCode:
    """A pickle that would create a file when unpickled without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def save(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((4,), float(step))}}, path)
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run directory whose file times say the opposite of its steps (as after a plain `cp -r`)."""
    root = tmp_path / "run"
    save(root / "checkpoints" / "last.ckpt", 40)
    save(root / "checkpoints" / "epoch=0-step=20.ckpt", 20)
    os.utime(root / "checkpoints" / "last.ckpt", (1_000, 1_000))
    return root


def test_newest_is_the_highest_step_from_the_run_or_its_checkpoint_dir(run: Path) -> None:
    assert newest_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    assert newest_checkpoint(run / "checkpoints") == run / "checkpoints" / "last.ckpt"


def test_a_truncated_newest_checkpoint_is_skipped_with_a_warning_naming_it(run: Path) -> None:
    truncate(run / "checkpoints" / "last.ckpt")
    with pytest.warns(UnreadableCheckpointWarning, match=r"last\.ckpt: not a complete checkpoint"):
        assert newest_checkpoint(run) == run / "checkpoints" / "epoch=0-step=20.ckpt"


def test_a_crafted_pickle_is_skipped_without_running_it(run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    torch.save({"global_step": 99, "payload": RunsCode(marker)}, run / "checkpoints" / "evil.ckpt")
    with pytest.warns(UnreadableCheckpointWarning, match=r"evil\.ckpt: unreadable checkpoint"):
        assert newest_checkpoint(run).name == "last.ckpt"
    with pytest.raises(UnreadableCheckpointError, match="evil.ckpt"):
        read_checkpoint(run / "checkpoints" / "evil.ckpt")
    assert not marker.exists()


def test_no_usable_checkpoint_is_one_user_error(run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such run"):
        newest_checkpoint(tmp_path / "missing")
    empty = tmp_path / "empty" / "checkpoints"
    empty.mkdir(parents=True)
    with pytest.raises(UserError, match="holds no .ckpt"):
        newest_checkpoint(empty.parent)
    for checkpoint in (run / "checkpoints").iterdir():
        checkpoint.write_bytes(b"not a checkpoint")
    with pytest.warns(UnreadableCheckpointWarning), pytest.raises(UserError, match="none of its 2 checkpoints"):
        newest_checkpoint(run)

