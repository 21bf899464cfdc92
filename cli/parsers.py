"""The conventions every argparse ``zhllama`` subcommand shares, so that its options read like LightningCLI's.

One spelling per option, LightningCLI's: underscores (``--max_steps``, ``--vocab_size``), no hyphen aliases and no
abbreviations. Every option has help text, and the help shows its default.
"""

from __future__ import annotations

import argparse
from typing import Any


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's line breaks and appends each option's default, except to required options and
    switches (whose default is simply "off")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


#: Keyword arguments of ``ArgumentParser`` (and of ``add_subparsers().add_parser``) for every subcommand.
PARSER_KWARGS: dict[str, Any] = {"formatter_class": HelpFormatter, "allow_abbrev": False}


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number of at least 1 (argparse names the option when it is not)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def command_parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, **PARSER_KWARGS)
