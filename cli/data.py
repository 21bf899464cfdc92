"""``zhllama data prepare``: build the pretraining token cache ahead of training.

Run once before a multi-node job (on shared storage) so that no rank tokenizes. The flags are
``WikiBlocksDataModule``'s own arguments (``--tokenizer --inputs --block_size --cache_dir --val_fraction
--num_proc ...``), or ``--config FILE`` whose ``data:`` section holds them -- either a plain mapping or the
LightningCLI form ``{class_path: datamodules.wiki_blocks.WikiBlocksDataModule, init_args: {...}}``, so the
training config itself can be passed; flags given with ``--config`` override it. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenization.errors import UserError

USAGE = "usage: zhllama data prepare [--config FILE] [--tokenizer DIR] [--inputs PATHS] [...]   (see --help)"
DATAMODULE = "datamodules.wiki_blocks.WikiBlocksDataModule"


def data_section(config_path: Path) -> dict[str, Any]:
    """The DataModule arguments from a config file's ``data:`` section (plain or class_path/init_args)."""
    import yaml

    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--config {config_path}: config file not found; check the path") from None
    except yaml.YAMLError as error:
        raise UserError(f"--config {config_path}: not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(config, Mapping) or not isinstance(config.get("data"), Mapping):
        raise UserError(f"--config {config_path}: needs a `data:` section holding the WikiBlocksDataModule arguments")
    section = dict(config["data"])
    if "class_path" in section:
        class_path = section["class_path"]
        if class_path not in (DATAMODULE, "WikiBlocksDataModule"):
            raise UserError(
                f"--config {config_path}: data.class_path is {class_path!r}; `data prepare` builds {DATAMODULE}"
            )
        section = dict(section.get("init_args") or {})
    return section


def build_parser(defaults: Mapping[str, Any]):
    from jsonargparse import ArgumentParser

    from datamodules.wiki_blocks import WikiBlocksDataModule

    parser = ArgumentParser(
        prog="zhllama data prepare",
        description="Build (or reuse) the token cache of WikiBlocksDataModule and print a JSON report.",
        exit_on_error=False,
        allow_abbrev=False,
    )
    parser.add_argument("--config", help="YAML file with a `data:` section (a plain mapping or class_path/init_args)")
    parser.add_class_arguments(WikiBlocksDataModule, as_positional=False)
    unknown = set(defaults) - {action.dest for action in parser._actions}
    if unknown:
        raise UserError(f"--config: unknown data argument(s) {', '.join(sorted(unknown))}; see --help")
    parser.set_defaults(**defaults)
    return parser


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"{USAGE}\n\ncommands:\n  prepare  build the pretraining token cache ahead of training")
        return 0 if args else 2
    if args[0] != "prepare":
        print(f"zhllama data: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    rest = args[1:]
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(rest)
    defaults = data_section(Path(known.config)) if known.config else {}
    parser = build_parser(defaults)
    try:
        config = parser.parse_args(rest)
    except Exception as exc:  # jsonargparse reports bad flags with its own exception type
        if type(exc).__name__ != "ArgumentError":
            raise
        print(f"zhllama data prepare: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    init_args = {k: v for k, v in config.as_dict().items() if k != "config"}
    from datamodules.wiki_blocks import WikiBlocksDataModule

    datamodule = WikiBlocksDataModule(**init_args)
    prepared = datamodule.prepare()
    if not prepared.built:
        print(f"reused the token cache at {prepared.cache.path}", file=sys.stderr)
    print(json.dumps(prepared.report(datamodule.block_size), ensure_ascii=False))
    return 0
