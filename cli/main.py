"""``zhllama`` dispatches to one module per command; each is imported only when asked for, so
``zhllama tokenizer stats`` never pays for importing Lightning."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from tokenization.errors import UserError

#: command -> (module, one-line help). Each module exposes ``main(argv: list[str]) -> int | None``.
COMMANDS: dict[str, tuple[str, str]] = {
    "tokenizer": ("cli.tokenizer", "train | merge | stats: give LLaMA a Chinese vocabulary"),
    "data": ("cli.data", "prepare: build the pretraining token cache ahead of training"),
    "fit": ("cli.lightning", "LightningCLI fit: train a stage from a YAML config"),
    "validate": ("cli.lightning", "LightningCLI validate"),
    "test": ("cli.lightning", "LightningCLI test"),
    "export": ("cli.export", "merge LoRA into the base and write a Hugging Face model (or a PEFT adapter)"),
    "generate": ("cli.generate", "generate / chat with an exported model"),
    "demo": ("cli.demo", "run the pipeline end to end on the built-in demo data"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: zhllama COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `zhllama COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"zhllama: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    if COMMANDS[command][0] == "cli.lightning":
        rest = [command, *rest]  # LightningCLI takes the subcommand itself
    try:
        result = module.main(rest)
    except UserError as error:
        if os.environ.get("ZHLLAMA_DEBUG") == "1":
            raise
        print(f"zhllama {command}: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
