"""``zhllama fit|validate|test --config stage.yaml``: LightningCLI over ``CausalLMModule`` and any datamodule.

The data's tokenizer is the model's tokenizer (the model grows its vocabulary to it) and the data's sequence
length is the model's block size, so each is written once in a config.

A stage's outputs live under ``trainer.default_root_dir`` (its run directory; the configs set it, the command line
overrides it): checkpoints in ``checkpoints/`` (written atomically, ``last.ckpt`` always overwritten in place) and
the logger's files under ``tensorboard/version_N/`` (a new version per invocation, beside the resolved
``config.yaml``). ``--ckpt_path last`` (or a run directory) resumes from the run's newest readable checkpoint.
Relative model paths are made absolute at parse time, so the saved config and checkpoint name real files.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace
from lightning.fabric.plugins.io import CheckpointIO
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from lightning_modules.atomic_checkpoint_io import AtomicCheckpointIO
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.run_checkpoints import (
    CHECKPOINT_DIR, SUFFIX, is_checkpoint, is_deepspeed_checkpoint, newest_checkpoint, read_checkpoint,
)
from tokenization.errors import UserError

#: Model arguments that name files; ``init_from`` is always a path, the others only when the path exists
#: (``pretrained`` may name a model in the local Hugging Face cache).
MODEL_PATHS = ("init_from", "pretrained", "tokenizer")
#: The logger a run gets unless its config names one (``--trainer.logger false``: none).
TENSORBOARD = "lightning.pytorch.loggers.TensorBoardLogger"
LOG_DIR = "tensorboard"


def sequence_length(data: LightningDataModule) -> int | None:
    """Block size of a pretraining datamodule or maximum length of an SFT one."""
    for name in ("block_size", "max_seq_length"):
        value = getattr(data, name, None)
        if value is not None:
            return int(value)
    return None


def absolute(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def as_list(value: object) -> list:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def is_subclass(entry: object, base: type) -> bool:
    """Whether a parsed ``class_path`` entry names a subclass of ``base``."""
    class_path = getattr(entry, "class_path", None)
    if not isinstance(class_path, str):
        return False
    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name, None)
    return isinstance(cls, type) and issubclass(cls, base)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and a file in it now, so a read-only or full location fails before step 1, not at
    the first save. A real write, not a permission-bit check: root ignores the bits."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".zhllama-writable-"):
            pass
    except OSError as error:
        raise UserError(f"{folder}: cannot write checkpoints there ({error.strerror or error}); set "
                        "--trainer.default_root_dir to a writable directory") from error


class ZhLlamaCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.tokenizer", "model.tokenizer")
        parser.link_arguments("data", "model.block_size", compute_fn=sequence_length, apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """Parses, then reads a ``--ckpt_path`` file ``weights_only`` before LightningCLI takes its
        hyper-parameters from it, so a truncated or crafted file is one line naming it, not a traceback."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if isinstance(ckpt_path, str) and Path(ckpt_path).expanduser().is_file():
            read_checkpoint(Path(ckpt_path).expanduser(), mmap=True)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._absolute_model_paths(config.model)
        root = Path(absolute(config.trainer.default_root_dir or os.getcwd()))
        config.trainer.default_root_dir = str(root)
        if config.trainer.logger is None or config.trainer.logger is True:
            config.trainer.logger = Namespace(class_path=TENSORBOARD, init_args=Namespace(save_dir=str(root),
                                                                                         name=LOG_DIR))
        checkpoint_dirs = []
        for callback in as_list(config.trainer.callbacks):
            if is_subclass(callback, ModelCheckpoint):
                callback.init_args.dirpath = absolute(callback.init_args.dirpath or root / CHECKPOINT_DIR)
                callback.init_args.enable_version_counter = False  # `last.ckpt` is replaced, never `last-v1.ckpt`
                checkpoint_dirs.append(Path(callback.init_args.dirpath))
        if self.subcommand == "fit":
            for folder in checkpoint_dirs:
                check_writable(folder)
        if "ckpt_path" in config and config.ckpt_path is not None:
            config.ckpt_path = self._resolve_ckpt_path(config.ckpt_path, checkpoint_dirs or [root / CHECKPOINT_DIR])

    def _resume_from_checkpoint(self) -> None:
        """The module rebuilds a resumed stage from the checkpoint's own record, never from ``init_from`` again
        (the parent may have been continued, moved or deleted since)."""
        self.model.resume_checkpoint = self.config[self.subcommand].get("ckpt_path")

    before_fit = before_validate = before_test = _resume_from_checkpoint

    def _absolute_model_paths(self, model: Namespace) -> None:
        for name in MODEL_PATHS:
            value = model.get(name)
            if isinstance(value, str) and (name == "init_from" or Path(value).expanduser().exists()):
                model[name] = absolute(value)

    def _resolve_ckpt_path(self, ckpt_path: str, checkpoint_dirs: list[Path]) -> str | None:
        """``last`` is the run's newest readable checkpoint (none yet: a fresh start, as in Lightning), and a
        directory is a run directory unless it is a DeepSpeed checkpoint; a checkpoint file or DeepSpeed
        directory is used as given (loaded ``weights_only`` before anything else reads it)."""
        if ckpt_path == "last":
            folder = checkpoint_dirs[0]
            if not (folder.is_dir() and any(is_checkpoint(p) for p in folder.glob(f"*{SUFFIX}"))):
                warnings.warn(f"--ckpt_path last: {folder} holds no checkpoint yet; starting from step 0")
                return None
            return str(newest_checkpoint(folder))
        path = Path(ckpt_path).expanduser()
        if path.is_dir() and not is_deepspeed_checkpoint(path):
            return str(newest_checkpoint(path))
        return ckpt_path

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The trainer, with atomic checkpoint writes unless the config names its own ``CheckpointIO``. Only a
        fit saves its resolved config (beside its logs): validate and test leave the run directory as it is."""
        if self.subcommand != "fit":
            self.save_config_callback = None
        plugins = as_list(self._get(self.config_init, "trainer", default={}).get("plugins"))
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            kwargs.setdefault("plugins", [*plugins, AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        # `zhllama fit ...` passes its own argv on, which LightningCLI would flag as "args and sys.argv both given"
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        run(argv)
    return 0


def run(argv: Sequence[str] | None) -> ZhLlamaCLI:
    return ZhLlamaCLI(
        CausalLMModule,
        LightningDataModule,
        subclass_mode_data=True,
        args=list(argv) if argv is not None else None,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
