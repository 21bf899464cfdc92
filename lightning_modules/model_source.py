"""A model and its tokenizer from any source a user can name: a Hugging Face directory (exported or any base), a
``.gguf`` file (llama.cpp's format, dequantised by transformers, tokenizer from the same file) or what
``zhllama fit`` wrote (a checkpoint or a run directory, rebuilt by the one restore path with the tokenizer its
lineage records). Everything is read offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import PreTrainedModel

from lightning_modules.model_loading import build_causal_lm
from lightning_modules.stage_lineage import is_pretrained_model
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf, load_tokenizer


def load_model_and_tokenizer(
    source: str | os.PathLike, dtype: torch.dtype = torch.float32, tokenizer: str | None = None,
    new_token_init: str = "mean",
) -> tuple[PreTrainedModel, object]:
    """``(model, tokenizer)`` on the CPU in ``dtype``, in eval mode. With ``tokenizer`` (a larger one, e.g. its
    Chinese extension), a base model grown to it, new rows at ``new_token_init``, as a stage would start."""
    path = Path(source).expanduser().resolve()
    if tokenizer is not None:
        if not is_pretrained_model(path):
            raise UserError(f"--tokenizer: only with a base model (a Hugging Face directory or .gguf), not {path}: "
                            "a checkpoint carries its own tokenizer")
        from lightning_modules.causal_lm import CausalLMModule

        module = CausalLMModule(pretrained=str(path), tokenizer=tokenizer, new_token_init=new_token_init)
        module.configure_model()
        return module.export_model().to(dtype).eval(), module.tokenizer
    if is_pretrained_model(path):
        tokenizer = load_tokenizer(path)  # first: a directory without one is refused before the model loads
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            model = build_causal_lm(str(path))
        except Exception as exc:
            if not is_gguf(path):
                raise
            raise UserError(f"{path}: cannot load a model from this GGUF ({type(exc).__name__}: {exc})") from None
        finally:
            torch.set_default_dtype(previous)
        return model.eval(), tokenizer
    from lightning_modules.checkpoint_io import restore_module

    module = restore_module(path)
    recorded = module.lineage.tokenizer if module.lineage is not None else None
    if recorded is None:
        raise UserError(f"{path}: the checkpoint records no tokenizer; export it with its tokenizer "
                        "(zhllama export) and pass the export")
    tokenizer = load_tokenizer(Path(recorded["path"]))
    return module.export_model().to(dtype).eval(), tokenizer
