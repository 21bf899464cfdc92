"""``zhllama export``: a trained checkpoint -> a Hugging Face model directory (LoRA merged) or a PEFT adapter.

    zhllama export --ckpt runs/sft/checkpoints/last.ckpt --output models/zh-alpaca [--dtype bf16|fp16|fp32]
    zhllama export --ckpt runs/sft/checkpoints/last.ckpt --output models/zh-alpaca-lora --adapter

The model directory loads offline with ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained``; the adapter directory with ``PeftModel.from_pretrained`` onto the base
resized to the tokenizer's length (the adapter carries the trained embedding and head).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhllama export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint from `zhllama fit` (or an exported HF dir)")
    parser.add_argument("--output", required=True, help="directory to write (written aside, then renamed into place)")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default=None,
                        help="weight dtype (default: bf16 for a model, fp32 for an adapter)")
    parser.add_argument("--adapter", action="store_true", help="write a PEFT adapter directory instead of a full model")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer directory, only for checkpoints that do not name the one they were trained with")
    parser.add_argument("--max_shard_size", default="2GB", help="largest safetensors shard of a full model")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lightning_modules.hf_export import ExportError, export_adapter, export_model

    try:
        if args.adapter:
            out = export_adapter(args.ckpt, args.output, args.dtype or "fp32", args.tokenizer, args.overwrite)
        else:
            out = export_model(
                args.ckpt, args.output, args.dtype or "bf16", args.tokenizer, args.max_shard_size, args.overwrite
            )
    except (ExportError, FileNotFoundError) as error:
        print(f"zhllama export: {error}", file=sys.stderr)
        return 1
    print(f"wrote {'adapter' if args.adapter else 'model'} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
