"""A model and its tokenizer from any source a user can name: a Hugging Face directory (exported or any base), a
``.gguf`` file (llama.cpp's format, dequantised by transformers, tokenizer from the same file) or what
``zhllama fit`` wrote (a checkpoint or a run directory, rebuilt by the one restore path with the tokenizer its
lineage records). Everything is read offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedModel

from lightning_modules.model_loading import build_causal_lm
from tokenization.errors import UserError

GGUF_SUFFIX = ".gguf"


def is_gguf(path: Path) -> bool:
    return path.suffix == GGUF_SUFFIX and path.is_file()


def load_tokenizer(source: Path):
    """The tokenizer of a Hugging Face directory or of a ``.gguf`` file."""
    if is_gguf(source):
        try:
            return AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name, local_files_only=True)
        except Exception as exc:  # the gguf reader raises bare ValueErrors/KeyErrors on foreign or truncated files
            raise UserError(f"{source}: cannot read a tokenizer from this GGUF ({type(exc).__name__}: {exc})") from None
    if not any((source / name).is_file() for name in ("tokenizer_config.json", "tokenizer.json")):
        raise UserError(f"{source}: no tokenizer (tokenizer_config.json / tokenizer.json) beside the model; save the "
                        "tokenizer into the model directory")
    return AutoTokenizer.from_pretrained(str(source), local_files_only=True)


def load_model_and_tokenizer(
    source: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, object]:
    """``(model, tokenizer)`` on the CPU in ``dtype``, in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(source).expanduser().resolve()
    if is_gguf(path) or (path / "config.json").is_file():
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
        return model.eval(), load_tokenizer(path)
    from lightning_modules.checkpoint_io import restore_module

    module = restore_module(path)
    recorded = module.lineage.tokenizer if module.lineage is not None else None
    if recorded is None:
        raise UserError(f"{path}: the checkpoint records no tokenizer; export it with its tokenizer "
                        "(zhllama export) and pass the export")
    tokenizer = load_tokenizer(Path(recorded["path"]))
    return module.export_model().to(dtype).eval(), tokenizer
