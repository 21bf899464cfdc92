"""``zhllama`` as a user runs it, for the CLI tests. ``console`` starts the console script in a new process: the
entry point itself, exit status, what reaches stderr, ``ZHLLAMA_DEBUG``. ``in_process`` runs the same
``cli.main.main`` inside pytest's process, from ``cwd``, without the seconds a new process spends importing torch,
transformers and Lightning; its result reads like ``console``'s (Lightning's own log lines go to pytest's
stderr, not into it)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from cli.main import DEBUG_ENV, main

ZHLLAMA = Path(sys.executable).with_name("zhllama")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def console(*argv: object, cwd: Path | None = None, debug: bool = False, timeout: int = 900
            ) -> subprocess.CompletedProcess:
    """``zhllama ARGV`` through the console script, offline, with ``ZHLLAMA_DEBUG=1`` when ``debug``."""
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV} | OFFLINE
    if debug:
        env[DEBUG_ENV] = "1"
    return subprocess.run([str(ZHLLAMA), *map(str, argv)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def in_process(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``zhllama ARGV`` run by ``cli.main.main`` in this process (from ``cwd``), its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd or previous)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(arg) for arg in argv])
            except SystemExit as exit_:  # argument errors: argparse and LightningCLI exit themselves
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["zhllama", *map(str, argv)], code, out.getvalue(), err.getvalue())
