"""Turn what a stage wrote back into a full model: the one entry point for resuming stages, export and chaining."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from lightning_modules.freeze_policy import policy_from_record
from lightning_modules.causal_lm import CHECKPOINT_KEY, CausalLMModule

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def restore_module(source: str | os.PathLike) -> CausalLMModule:
    """Rebuild the full ``CausalLMModule`` a stage trained, on CPU, in the default dtype.

    ``source`` is either
      * a Lightning checkpoint file written by ``zhllama fit`` (e.g. ``.../checkpoints/last.ckpt``): the module is
        re-created from the checkpoint's hyper-parameters (base model from ``pretrained`` / ``model_config`` +
        ``init_seed``, or recursively from its own ``init_from``; tokenizer resize), the freeze policy recorded in
        the checkpoint is re-applied (so LoRA checkpoints come back as a peft-wrapped model), and the trained
        parameters the checkpoint holds are loaded (a missing or unexpected one is an error); or
      * a Hugging Face model directory (``config.json``), e.g. an exported stage: loaded as is, no policy, with its
        tokenizer when the directory has one.

    The returned module's ``model`` is ready for evaluation (call ``.eval()``); ``module.export_model()`` gives a
    plain ``*ForCausalLM`` with LoRA merged (what ``zhllama export`` saves and what ``init_from`` starts from),
    ``module.tokenizer`` the attached tokenizer, ``module.original_vocab_size`` the base vocabulary size.
    Relative paths stored in the hyper-parameters are resolved from the current directory.
    """
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path}: a directory without config.json; pass a Lightning .ckpt file or an exported Hugging Face "
                "directory (a DeepSpeed checkpoint directory must first be converted with Lightning's "
                "convert_zero_checkpoint_to_fp32_state_dict)"
            )
        has_tokenizer = any((path / name).is_file() for name in TOKENIZER_FILES)
        module = CausalLMModule(pretrained=str(path), tokenizer=str(path) if has_tokenizer else None)
        module.configure_model()
        return module
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or model directory")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    record = checkpoint.get(CHECKPOINT_KEY)
    if record is None or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{path}: not a checkpoint written by `zhllama fit` (no hyper-parameters / zhllama record)")
    # LightningCLI adds bookkeeping entries (`_instantiator`, `_class_path`) beside the constructor arguments
    arguments = inspect.signature(CausalLMModule).parameters
    module = CausalLMModule(**{k: v for k, v in checkpoint["hyper_parameters"].items() if k in arguments})
    module.configure_model()
    if record["freeze_policy"] is not None:
        module.apply_freeze_policy(policy_from_record(record["freeze_policy"]))
    module.load_trained_state(checkpoint["state_dict"])
    return module
