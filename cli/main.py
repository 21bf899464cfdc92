"""``zhllama`` dispatches to one module per command; each is imported only when asked for, so
``zhllama tokenizer stats`` never pays for importing Lightning.

Every error the user can fix ends as one line on stderr, ``zhllama COMMAND: message``, and exit status 2: a
``UserError``, an operating-system error about a file (missing, not permitted, disk full) and a ``SystemExit``
carrying a message. Anything else is a bug and keeps its traceback; ``ZHLLAMA_DEBUG=1`` shows the traceback of
every error. Argument errors of argparse and LightningCLI keep their usage message (they exit 2 themselves).
"""

from __future__ import annotations

import errno
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
    "eval": ("cli.eval", "bits per character / byte of a model on text: compares models across tokenizers"),
    "demo": ("cli.demo", "run the pipeline end to end on the built-in demo data"),
    "experiment": ("cli.experiment", "teach SmolLM2-135M Chinese with the whole recipe, measured at every stage"),
}

#: Commands whose first argument is a subcommand (``zhllama tokenizer merge``), named in their error lines.
GROUPS = frozenset({"tokenizer", "data"})
DEBUG_ENV = "ZHLLAMA_DEBUG"

#: What to do about an operating-system error, by errno.
OS_ERROR_FIXES: dict[int, str] = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another location",
    errno.EPERM: "check its permissions or choose another location",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free space or choose another location",
    errno.EDQUOT: "the disk quota is exceeded; free space or choose another location",
    errno.EISDIR: "name a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: zhllama COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `zhllama COMMAND --help` for a command's options."]
    return "\n".join(lines)


def user_message(error: BaseException) -> str | None:
    """The one-line report of an error the user can fix, or ``None`` for one that keeps its traceback."""
    if isinstance(error, UserError):
        message = str(error)
    elif isinstance(error, SystemExit):
        if not isinstance(error.code, str):
            return None  # an exit status (argparse's usage errors among them): nothing to add
        message = error.code
    elif isinstance(error, OSError) and error.filename is not None:
        names = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        fix = OS_ERROR_FIXES.get(error.errno or -1)
        message = f"{names}: {error.strerror or error}" + (f"; {fix}" if fix else "")
    elif isinstance(error, OSError) and (error.errno is None or error.errno in OS_ERROR_FIXES):
        message = str(error)  # Hugging Face's file errors (no errno): the message names the file
    else:
        return None
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


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
    except (Exception, SystemExit) as error:
        message = user_message(error)
        if message is None or os.environ.get(DEBUG_ENV) == "1":
            raise
        name = f"{command} {rest[0]}" if command in GROUPS and rest and not rest[0].startswith("-") else command
        print(f"zhllama {name}: {message}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
