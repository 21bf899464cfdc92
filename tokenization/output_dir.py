"""Writing an output directory all at once: built in a temporary sibling, renamed into place at the end.

A failed or interrupted merge must leave nothing half-written at ``--output``; a rename within one directory is
atomic, so readers never see a half-written directory; a failed swap puts the previous one back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Files a previous tokenizer output may hold; only such a directory is replaced without asking.
REPLACEABLE_NAMES = frozenset(
    {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "merge_report.json"}
)


def check_replaceable(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output}: exists and is not a directory; choose another --output")
    if output.is_dir():
        foreign = sorted(p.name for p in output.iterdir() if p.name not in REPLACEABLE_NAMES)
        if foreign:
            raise FileExistsError(
                f"{output}: directory exists and holds other files ({', '.join(foreign[:5])}); choose an empty or "
                "new --output, or remove it (only a previous tokenizer output is replaced)"
            )


@contextmanager
def atomic_directory(output: Path) -> Iterator[Path]:
    """Yields a fresh temporary directory beside ``output``; on success it replaces ``output``, else vanishes."""
    output = output.expanduser().resolve()
    check_replaceable(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if output.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
            os.replace(output, retired / output.name)
            try:
                os.replace(staging, output)
            except BaseException:
                os.replace(retired / output.name, output)  # put the previous output back
                raise
            finally:
                shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

