import errno
import subprocess
import sys
import types

import pytest

from cli.main import COMMANDS, DEBUG_ENV, main
from tokenization.errors import UserError


def test_help_lists_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in COMMANDS)


def test_unknown_command_is_refused(capsys) -> None:
    assert main(["pretrain"]) == 2
    assert "unknown command 'pretrain'" in capsys.readouterr().err


def test_python_dash_m_cli_is_the_same_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: zhllama COMMAND")


@pytest.fixture
def failing_command(monkeypatch):
    """A ``zhllama boom`` command whose ``main`` raises the exception the test puts in ``raised``."""
    raised: list[BaseException] = []

    def boom_main(argv: list[str]) -> int:
        raise raised[0]

    module = types.ModuleType("boom_command")
    module.main = boom_main
    monkeypatch.setitem(sys.modules, "boom_command", module)
    monkeypatch.setitem(COMMANDS, "boom", ("boom_command", "fails"))
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    return raised


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (UserError("data.inputs: x.jsonl: input not found"), "zhllama boom: data.inputs: x.jsonl: input not found"),
        (SystemExit("--prompts and --output go together"), "zhllama boom: --prompts and --output go together"),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/out"),
         "zhllama boom: /ro/out: Permission denied; check its permissions or choose another location"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/tokens.bin"),
         "zhllama boom: /full/tokens.bin: No space left on device; the disk is full; free space or choose another "
         "location"),
        (FileNotFoundError("m/: not a model directory (no config.json)\n pass an export"),
         "zhllama boom: m/: not a model directory (no config.json) pass an export"),
    ],
    ids=["user_error", "system_exit_message", "permission", "disk_full", "own_file_message"],
)
def test_errors_the_user_can_fix_are_one_line_and_exit_2(failing_command, capsys, error, line) -> None:
    failing_command.append(error)
    assert main(["boom"]) == 2
    assert capsys.readouterr().err == line + "\n"


def test_a_group_command_names_its_subcommand(failing_command, capsys, monkeypatch) -> None:
    monkeypatch.setitem(COMMANDS, "data", ("boom_command", "fails"))
    failing_command.append(UserError("bad"))
    assert main(["data", "prepare", "--x"]) == 2
    assert capsys.readouterr().err == "zhllama data prepare: bad\n"


def test_bugs_and_exit_statuses_pass_through_and_debug_shows_every_traceback(failing_command, monkeypatch) -> None:
    failing_command.append(KeyError("bug"))
    with pytest.raises(KeyError):
        main(["boom"])
    failing_command[0] = SystemExit(2)  # argparse's usage errors: already reported
    with pytest.raises(SystemExit) as exit_:
        main(["boom"])
    assert exit_.value.code == 2
    monkeypatch.setenv(DEBUG_ENV, "1")
    failing_command[0] = UserError("fixable")
    with pytest.raises(UserError, match="fixable"):
        main(["boom"])
