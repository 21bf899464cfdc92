"""Checkpoints are written aside and renamed: a failed save leaves the previous file; loads are weights_only."""

import errno
from pathlib import Path

import pytest
import torch

from lightning_modules import atomic_checkpoint_io
from lightning_modules.atomic_checkpoint_io import AtomicCheckpointIO
from tests.lightning_modules.test_run_checkpoints import RunsCode, truncate
from tokenization.errors import UserError


def test_save_then_load_leaves_only_the_checkpoint(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 3, "w": torch.arange(4)}, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    loaded = io.load_checkpoint(path)
    assert loaded["global_step"] == 3 and torch.equal(loaded["w"], torch.arange(4))


def test_a_full_disk_mid_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1}, path)
    before = path.read_bytes()

    def half_written_then_full(obj, target) -> None:
        Path(target).write_bytes(before[: len(before) // 3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_checkpoint_io.torch, "save", half_written_then_full)
    with pytest.raises(UserError, match="last.ckpt"):
        io.save_checkpoint({"global_step": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "not_a_zip", "crafted_pickle"])
def test_a_bad_checkpoint_is_one_user_error_naming_it(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    marker = tmp_path / "code_ran"
    torch.save({"global_step": 1, "w": torch.zeros(1000)}, path)
    if damage == "truncated":
        truncate(path)
    elif damage == "not_a_zip":
        path.write_bytes(b"\x80\x02}q\x00.")
    else:
        torch.save({"payload": RunsCode(marker)}, path)
    with pytest.raises(UserError, match=f"{path}: "):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # the caller cannot turn the check off
    assert not marker.exists()
