"""Turn what a stage wrote back into the full module it trained (what ``zhllama export`` saves).

A source is a checkpoint file written by ``zhllama fit``, a run directory (its newest readable checkpoint), a
Hugging Face model directory (an exported stage or any base) or a ``.gguf`` file. Files are read with
``weights_only=True`` only: a checkpoint is data, and a crafted pickle is refused before any of its code could run.
The model is built the way every stage builds its start -- ``CausalLMModule._build_base_model`` replaying a
``StageLineage`` -- so export, ``init_from`` and resuming share one path.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path

from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.freeze_policy import policy_from_record
from lightning_modules.stage_checkpoint import CHECKPOINT_KEY, checkpoint_file, read_stage_checkpoint
from lightning_modules.stage_lineage import StageLineage, is_pretrained_model
from tokenization.errors import UserError


def restore_module(
    source: str | os.PathLike,
    base_dir: str | None = None,
    at_start: Callable[[CausalLMModule], None] | None = None,
) -> CausalLMModule:
    """Rebuild the full ``CausalLMModule`` a stage trained, on CPU, in the default dtype.

    A checkpoint is rebuilt from its own record only: its base (at the recorded absolute path, or at
    ``base_dir`` for a base that moved, checked against the fingerprint), its earlier stages' tensors, its
    freeze policy and its trained parameters; no earlier stage's file is read. A model directory or ``.gguf`` is
    loaded as is, no policy, with its tokenizer when it has one. ``module.export_model()`` is then the plain
    merged model. ``at_start`` sees the module holding the model the stage started from, before its policy and tensors.
    """
    path = Path(source).expanduser().resolve()
    if is_pretrained_model(path):
        if base_dir is not None:
            raise UserError(f"--base {base_dir}: {path} is a model, which needs no base; drop --base")
        has_tokenizer = (path / "tokenizer_config.json").is_file()
        module = CausalLMModule(pretrained=str(path), tokenizer=str(path) if has_tokenizer else None)
        module.configure_model()
        return module
    checkpoint = read_stage_checkpoint(checkpoint_file(path), mmap=True)
    record = checkpoint[CHECKPOINT_KEY]
    arguments = inspect.signature(CausalLMModule).parameters  # LightningCLI adds `_instantiator`, `_class_path`
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in arguments}
    module = CausalLMModule(**{**hparams, "tokenizer": None, "init_from": None})  # the record replaces both
    module.lineage, module.base_dir = StageLineage.from_record(record), base_dir
    module.configure_model()
    module.original_vocab_size = record["original_vocab_size"]
    if at_start is not None:
        at_start(module)
    if record["freeze_policy"] is not None:
        module.apply_freeze_policy(policy_from_record(record["freeze_policy"]))
    module.load_trained_state(checkpoint["state_dict"])
    return module
