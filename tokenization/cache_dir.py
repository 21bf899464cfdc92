"""Where zhllama keeps what it can rebuild (token caches, demo assets): one rule for every cache.

``$<env>`` when the caller names an override variable and it is set, else ``$XDG_CACHE_HOME/zhllama/<name>``,
else ``~/.cache/zhllama/<name>`` (the XDG base directory specification).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir(name: str, env: str | None = None) -> Path:
    """The cache directory for ``name`` (e.g. ``tokens``), honouring ``$env`` and then ``$XDG_CACHE_HOME``."""
    if env and os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "zhllama" / name
