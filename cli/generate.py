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

from datamodules.prompt_templates import get_template, join_instruction

PROMPT_FIELDS = ("instruction", "prompt", "question")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhllama generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="exported model directory (`zhllama export` output)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prompt", help="one instruction to answer")
    mode.add_argument("--interactive", action="store_true", help="chat loop: one instruction a line from stdin")
    mode.add_argument("--prompts", type=Path, help="JSON lines file of prompts to answer in batch (needs --output)")
    parser.add_argument("--output", type=Path, help="where --prompts answers go (JSON lines)")
    parser.add_argument(
        "--template", default="alpaca_v1",
        help="alpaca_v1 (default), llama2_zh, or a template string containing {instruction}; use the SFT one",
    )
    parser.add_argument("--system_prompt", default=None, help="override the template's system prompt (llama2_zh)")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--top_k", type=int, default=40)
    parser.add_argument("--top_p", type=float, default=0.9)
    parser.add_argument("--repetition_penalty", type=float, default=1.1)
    parser.add_argument("--max_new_tokens", type=int, default=400)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--seed", type=int, default=42, help="sampling seed (answers are reproducible)")
    parser.add_argument("--batch_size", type=int, default=8, help="prompts generated together with --prompts")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
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
                raise SystemExit(f"{path}:{number}: invalid JSON ({exc.msg}); one JSON object a line") from None
            field = next((f for f in PROMPT_FIELDS if isinstance(record, dict) and isinstance(record.get(f), str)), None)
            if field is None:
                raise SystemExit(f"{path}:{number}: no string field {' / '.join(PROMPT_FIELDS)}; add one")
            text = join_instruction(record[field], record.get("input")) if field == "instruction" else record[field]
            prompts.append((record, text))
    if not prompts:
        raise SystemExit(f"{path}: no prompts")
    return prompts


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.prompts is None) != (args.output is None):
        raise SystemExit("zhllama generate: --prompts and --output go together")
    import torch

    from lightning_modules.generation import Sampling, answer_batch, load_model, stream_answer

    template = get_template(args.template, args.system_prompt)
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        for start in range(0, len(prompts), args.batch_size):
            chunk = prompts[start : start + args.batch_size]
            answers = answer_batch(model, tokenizer, template, [text for _, text in chunk], sampling)
            for (record, _), answer in zip(chunk, answers):
                out.write(json.dumps({**record, "output": answer}, ensure_ascii=False) + "\n")
            print(f"answered {min(start + args.batch_size, len(prompts))}/{len(prompts)}", file=sys.stderr)
    partial.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
