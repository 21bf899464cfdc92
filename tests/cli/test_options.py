"""Every subcommand spells its options one way, LightningCLI's (underscores; no hyphen alias, no abbreviation),
explains each option and shows its default; the docs use those spellings."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from cli import demo, export, generate, tokenizer
from cli.data import build_parser as data_prepare_parser
from cli.parsers import HelpFormatter

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = {
        "generate": generate.build_parser(),
        "export": export.build_parser(),
        "demo": demo.build_parser(),
        "data prepare": data_prepare_parser({}),
    }
    group = next(a for a in tokenizer.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers.update({f"tokenizer {name}": parser for name, parser in group.choices.items()})
    return parsers


PARSERS = subcommand_parsers()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def spellings(action: argparse.Action) -> list[str]:
    """The action's option strings, without jsonargparse's ``--inputs+`` (append to a list) forms."""
    return [s for s in action.option_strings if not s.endswith("+")]


def test_every_subcommand_is_covered() -> None:
    assert set(PARSERS) == {"generate", "export", "demo", "data prepare", "tokenizer train", "tokenizer merge",
                            "tokenizer stats"}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_one_spelling_per_option_with_underscores(name: str) -> None:
    parser = PARSERS[name]
    assert parser.allow_abbrev is False
    for action in options(parser):
        (spelling,) = spellings(action)
        assert re.fullmatch(r"--[a-z0-9]+(_[a-z0-9]+)*", spelling), spelling


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in options(parser):
        assert action.help and action.help != argparse.SUPPRESS and len(action.help) > 10, spellings(action)
        if not action.required and action.nargs != 0:
            assert "%(default)" in formatter._get_help_string(action), spellings(action)
    parser.format_help()  # every help string formats (a stray % would raise)


def test_argparse_subcommands_share_the_formatter() -> None:
    for name, parser in PARSERS.items():
        if name != "data prepare":  # jsonargparse's own formatter, which shows type and default
            assert parser.formatter_class is HelpFormatter, name


def test_the_hyphen_spelling_and_abbreviations_are_refused(capsys) -> None:
    train = PARSERS["tokenizer train"]
    assert train.parse_args(["--input", "x", "--output", "y", "--vocab_size", "10"]).vocab_size == 10
    for wrong in ("--vocab-size", "--vocab"):
        with pytest.raises(SystemExit) as exit_:
            train.parse_args(["--input", "x", "--output", "y", wrong, "10"])
        assert exit_.value.code == 2 and f"unrecognized arguments: {wrong}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        PARSERS["generate"].parse_args(["--model", "m", "--prompt", "p", "--max-new-tokens", "3"])
    with pytest.raises(Exception, match="--block-size"):  # jsonargparse raises its ArgumentError (exit_on_error off)
        PARSERS["data prepare"].parse_args(["--tokenizer", "t", "--inputs", "i", "--block-size", "3"])


def documents() -> list[Path]:
    found = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "Makefile", *PROJECT_ROOT.glob("docs/**/*.md")]
    return found + sorted(PROJECT_ROOT.glob("notebooks/*.ipynb")) + sorted(PROJECT_ROOT.glob("cli/*.py"))


def test_docs_and_commands_use_the_canonical_spellings() -> None:
    hyphenated = {
        "--" + s[2:].replace("_", "-")
        for parser in PARSERS.values() for action in options(parser) for s in spellings(action) if "_" in s
    }
    assert "--max-new-tokens" in hyphenated and "--pad-token" in hyphenated
    pattern = re.compile("|".join(re.escape(h) + r"\b" for h in sorted(hyphenated, key=len, reverse=True)))
    stale = [f"{path.relative_to(PROJECT_ROOT)}: {m.group()}" for path in documents()
             for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not stale


def test_num_proc_default_is_decided_at_run_time_not_saved() -> None:
    """A saved LightningCLI config records ``num_proc: null``, not the CPU count of the machine that wrote it."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    parser = ArgumentParser()
    parser.add_subclass_arguments(LightningDataModule, "data")
    config = parser.parse_args([
        "--data", "datamodules.wiki_blocks.WikiBlocksDataModule", "--data.init_args.tokenizer", "t",
        "--data.init_args.inputs", "i",
    ])
    saved = yaml.safe_load(parser.dump(config, skip_none=False))
    assert saved["data"]["init_args"]["num_proc"] is None


def test_generate_refuses_a_batch_size_below_one(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        PARSERS["generate"].parse_args(["--model", "m", "--prompts", "p", "--output", "o", "--batch_size", "0"])
    assert exit_.value.code == 2 and "--batch_size: must be at least 1, not 0" in capsys.readouterr().err
