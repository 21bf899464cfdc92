"""Where ``zhllama fit`` writes, through the console script: only under ``--trainer.default_root_dir``, whatever the
working directory; a copied run resumes into itself with ``last.ckpt`` replaced; a truncated ``last.ckpt`` is
skipped for the intact earlier checkpoint; an unwritable run directory fails before the model is built."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli import lightning as lightning_cli
from tests.cli.tiny_fit import TINY, small_corpus, tiny_fit_args
from tests.lightning_modules.test_run_checkpoints import RunsCode, truncate
from tokenization.errors import UserError

ZHLLAMA = Path(sys.executable).with_name("zhllama")


def snapshot(folder: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int] | None]:
    """Every directory under ``folder`` and every file with its size and modification time, outside ``skip``."""
    found = {}
    for path in folder.rglob("*"):
        if not any(path == s or s in path.parents for s in skip):
            stat = path.stat()
            found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns) if path.is_file() else None
    return found


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def fit(zh_tokenizer_dir: Path, wiki_sample: Path, tmp_path: Path):
    """Runs ``zhllama fit`` on tiny pt_embed from ``tmp_path/elsewhere``, with HOME and TMPDIR inside ``tmp_path``;
    the token cache is the one named location outside the run. Libraries keep their own caches in HOME
    (matplotlib's font list, through torchmetrics), so there only zhllama's names are checked."""
    for name in ("elsewhere", "home", "tmp"):
        (tmp_path / name).mkdir()
    corpus = small_corpus(wiki_sample, tmp_path / "inputs")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp"), "HF_HUB_OFFLINE": "1"}
    env.pop("XDG_CACHE_HOME", None)
    args = tiny_fit_args("pt_embed.yaml", zh_tokenizer_dir, corpus, tmp_path / "cache")

    def run(root: Path, *extra: str) -> subprocess.CompletedProcess:
        command = [str(ZHLLAMA), "fit", *args, "--model.model_config", TINY, "--trainer.default_root_dir", str(root),
                   *extra]  # fmt: skip
        return subprocess.run(command, cwd=tmp_path / "elsewhere", env=env, capture_output=True, text=True,
                              timeout=600)

    return run


def checkpoint_step(path: Path) -> int:
    return torch.load(path, weights_only=True, mmap=True)["global_step"]


@pytest.mark.slow
def test_fit_writes_only_under_its_run_directory_and_a_copied_run_resumes_into_itself(fit, zh_tokenizer_dir,
                                                                                     tmp_path) -> None:
    root, cache, home = tmp_path / "run", tmp_path / "cache", tmp_path / "home"
    before = snapshot(tmp_path, skip=(root, cache, home)), snapshot(zh_tokenizer_dir)
    done = fit(root, "--trainer.max_steps", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (snapshot(tmp_path, skip=(root, cache, home)), snapshot(zh_tokenizer_dir)) == before
    assert not [p for p in home.rglob("*") if "zhllama" in p.name or p.suffix == ".ckpt"]
    layout = files(root)
    assert [f for f in layout if "events.out.tfevents" not in f] == [
        "checkpoints/last.ckpt", "tensorboard/version_0/config.yaml", "tensorboard/version_0/hparams.yaml"]
    assert len(layout) == 4 and layout[2].startswith("tensorboard/version_0/events.out.tfevents.")

    # a copied run resumes into the copy: `last.ckpt` is replaced (Lightning's default wrote `last-v1.ckpt`)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    before = snapshot(tmp_path, skip=(copy, cache, home))
    done = fit(copy, "--trainer.max_steps", "4", "--ckpt_path", "last")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Restoring states from the checkpoint path at {copy}/checkpoints/last.ckpt" in done.stdout + done.stderr
    assert snapshot(tmp_path, skip=(copy, cache, home)) == before
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["last.ckpt"]
    assert checkpoint_step(copy / "checkpoints" / "last.ckpt") == 4
    assert sorted(p.name for p in (copy / "tensorboard").iterdir()) == ["version_0", "version_1"]


@pytest.mark.slow
def test_resume_skips_a_truncated_last_checkpoint_with_a_warning(fit, tmp_path) -> None:
    root = tmp_path / "run"
    done = fit(root, "--trainer.max_steps", "4", "--trainer.callbacks.every_n_train_steps", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoints = root / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch=0-step=4.ckpt", "last.ckpt"]
    truncate(checkpoints / "last.ckpt")  # what a full disk left before saves were atomic

    done = fit(root, "--trainer.max_steps", "6", "--ckpt_path", "last")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{checkpoints / 'last.ckpt'}: not a complete checkpoint" in done.stderr
    assert f"Restoring states from the checkpoint path at {checkpoints / 'epoch=0-step=4.ckpt'}" in (
        done.stdout + done.stderr)
    assert checkpoint_step(checkpoints / "last.ckpt") == 6


@pytest.mark.slow
def test_an_unwritable_run_directory_fails_before_training(fit, tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory\n")
    done = fit(blocker / "run", "--trainer.max_steps", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "Trainable params" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"zhllama fit: {blocker / 'run' / 'checkpoints'}: cannot write checkpoints there (Not a directory); "
        "set --trainer.default_root_dir to a writable directory")


def test_the_writable_check_writes_a_file_because_permission_bits_do_not_bind_root(tmp_path, monkeypatch) -> None:
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    lightning_cli.check_writable(tmp_path / "checkpoints")  # a writable place passes and keeps nothing but the dir
    assert list((tmp_path / "checkpoints").iterdir()) == []
    monkeypatch.setattr(lightning_cli.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(UserError, match=f"{tmp_path / 'checkpoints'}: cannot write checkpoints there"):
        lightning_cli.check_writable(tmp_path / "checkpoints")


@pytest.mark.slow
def test_a_crafted_checkpoint_given_to_ckpt_path_is_refused_without_running_it(fit, tmp_path) -> None:
    marker, crafted = tmp_path / "code_ran", tmp_path / "crafted.ckpt"
    torch.save({"global_step": 1, "payload": RunsCode(marker)}, crafted)
    done = fit(tmp_path / "run", "--trainer.max_steps", "2", "--ckpt_path", str(crafted))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"zhllama fit: {crafted}: unreadable checkpoint (")
    assert not marker.exists()
