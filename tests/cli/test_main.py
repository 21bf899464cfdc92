import subprocess
import sys

from cli.main import COMMANDS, main


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
