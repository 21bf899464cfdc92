"""``zhllama generate``: answer one prompt, chat, or answer a prompt file with an exported model.

    zhllama generate --model DIR --prompt "为什么天空是蓝色的？"
    zhllama generate --model DIR --interactive            # one instruction a line; empty line/EOF/exit ends
    zhllama generate --model DIR --prompts P.jsonl --output OUT.jsonl

Single prompts and chat stream the answer as it is generated. The prompt file holds one JSON object a line
with an ``instruction`` (plus optional ``input``), ``prompt`` or ``question`` field; each line of the output
is the input object plus ``"output"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cli.parsers import command_parser, positive_int
from datamodules.prompt_templates import get_template, join_instruction
from tokenization.atomic_write import atomic_file, check_output
from tokenization.errors import UserError

PROMPT_FIELDS = ("instruction", "prompt", "question")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("zhllama generate", __doc__)
    parser.add_argument("--model", required=True, help="exported model directory (`zhllama export` output)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prompt", help="one instruction to answer")
    mode.add_argument("--interactive", action="store_true", help="chat loop: one instruction a line from stdin")
    mode.add_argument("--prompts", type=Path, help="JSON lines file of prompts to answer in batch (needs --output)")
    parser.add_argument("--output", type=Path, help="where --prompts answers go (JSON lines)")
    parser.add_argument(
        "--template", default="alpaca_v1",
        help="alpaca_v1, llama2_zh, or a template string containing {instruction}; use the one SFT used",
    )
    parser.add_argument("--system_prompt", default=None, help="replaces the template's system prompt (llama2_zh)")
    parser.add_argument("--temperature", type=float, default=0.2, help="sampling temperature (> 0)")
    parser.add_argument("--top_k", type=int, default=40, help="sample among the k likeliest tokens (0: all)")
    parser.add_argument("--top_p", type=float, default=0.9, help="nucleus sampling: the likeliest tokens up to p")
    parser.add_argument(
        "--repetition_penalty", type=float, default=1.1,
        help="divides the positive, multiplies the negative logits of tokens already in the sequence (1: off)",
    )
    parser.add_argument("--max_new_tokens", type=int, default=400, help="answer length limit in tokens")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--seed", type=int, default=42, help="sampling seed (answers are reproducible)")
    parser.add_argument(
        "--batch_size", type=positive_int, default=8, help="prompts generated together with --prompts"
    )
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on a GPU, fp32 on the CPU), bf16, fp16 or fp32")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, ...")
    return parser


def read_prompts(path: Path) -> list[tuple[dict, str]]:
    """(record, instruction) per non-blank line; a bad line stops with file:line and the fix."""
    prompts = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: invalid JSON ({exc.msg}); one JSON object a line") from None
            field = next((f for f in PROMPT_FIELDS if isinstance(record, dict) and isinstance(record.get(f), str)), None)
            if field is None:
                raise UserError(f"{path}:{number}: no string field {' / '.join(PROMPT_FIELDS)}; add one")
            text = join_instruction(record[field], record.get("input")) if field == "instruction" else record[field]
            prompts.append((record, text))
    if not prompts:
        raise UserError(f"{path}: no prompts; one JSON object a line with an instruction, prompt or question")
    return prompts


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.prompts is None) != (args.output is None):
        raise UserError("--prompts and --output go together: give both or neither")
    if args.output is not None:
        check_output(args.output, (args.prompts, args.model), directory=False)  # before the model loads
    import torch

    from lightning_modules.generation import Sampling, answer_batch, load_model, stream_answer

    try:
        template = get_template(args.template, args.system_prompt)
    except UserError as error:
        raise UserError(f"--template: {error}") from None
    prompts = read_prompts(args.prompts) if args.prompts else None
    sampling = Sampling(
        args.temperature, args.top_k, args.top_p, args.repetition_penalty, args.max_new_tokens, not args.greedy
    )
    torch.manual_seed(args.seed)
    model, tokenizer = load_model(args.model, args.dtype, args.device)

    if args.prompt is not None:
        stream_answer(model, tokenizer, template, args.prompt, sampling)
        return 0
    if args.interactive:
        print("zhllama chat: one instruction a line; an empty line, `exit` or Ctrl-D ends.", file=sys.stderr)
        for line in sys.stdin:
            text = line.strip()
            if not text or text in ("exit", "quit"):
                break
            stream_answer(model, tokenizer, template, text, sampling)
        return 0

    assert prompts is not None and args.output is not None
    with atomic_file(args.output, (args.prompts, args.model)) as partial, open(partial, "w", encoding="utf-8") as out:
        for start in range(0, len(prompts), args.batch_size):
            chunk = prompts[start : start + args.batch_size]
            answers = answer_batch(model, tokenizer, template, [text for _, text in chunk], sampling)
            for (record, _), answer in zip(chunk, answers):
                out.write(json.dumps({**record, "output": answer}, ensure_ascii=False) + "\n")
            print(f"answered {min(start + args.batch_size, len(prompts))}/{len(prompts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
