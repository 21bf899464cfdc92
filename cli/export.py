"""``zhllama export``: a stage checkpoint -> a Hugging Face model directory (LoRA merged), or a base and an adapter.

    zhllama export --ckpt runs/tiny/sft/checkpoints/last.ckpt --output models/zh-alpaca [--dtype bf16|fp16|fp32]
    zhllama export --ckpt runs/tiny/sft --output models/zh-alpaca-lora --adapter
    zhllama export --ckpt archive/sft.ckpt --output models/zh-alpaca --base /data/llama-7b-hf   # a base that moved

A checkpoint needs only its base model: the earlier stages' tensors and the tokenizer travel inside it. The model
directory loads offline with ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``; the
adapter directory holds ``base/`` (the model the stage started from) and the stage's LoRA, for
``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(DIR/base), DIR)``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cli.parsers import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("zhllama export", __doc__)
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint of `zhllama fit`, a run directory (its newest checkpoint), or an exported dir")
    parser.add_argument("--output", required=True, help="directory to write (written aside, then renamed into place)")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16", help="weight dtype")
    parser.add_argument("--adapter", action="store_true",
                        help="write base/ (the model the stage started from) and this stage's LoRA as a PEFT adapter")
    parser.add_argument("--base", default=None,
                        help="where the checkpoint's base model is now, if it moved (checked against its fingerprint)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer directory, only for checkpoints that carry none (a model_config stage)")
    parser.add_argument("--max_shard_size", default="2GB", help="largest safetensors shard of a full model")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier `zhllama export` at --output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lightning_modules.hf_export import export_adapter, export_model

    if args.adapter:
        out = export_adapter(args.ckpt, args.output, args.dtype, args.tokenizer, args.overwrite, args.base)
    else:
        out = export_model(args.ckpt, args.output, args.dtype, args.tokenizer, args.max_shard_size, args.overwrite,
                           args.base)
    print(f"wrote {'base and adapter' if args.adapter else 'model'} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
