"""The committed test assets are exactly the files tests/assets/README.md lists, with its sha256, each small."""

import hashlib
import re

from tests.conftest import ASSETS

ROW = re.compile(r"^\| `(?P<path>[^`]+)` \|.*\| `(?P<sha256>[0-9a-f]{64})` \|$")
MAX_BYTES = 2 * 1024 * 1024


def listed() -> dict[str, str]:
    lines = (ASSETS / "README.md").read_text(encoding="utf-8").splitlines()
    return {m["path"]: m["sha256"] for m in map(ROW.match, lines) if m}


def test_every_asset_is_listed_with_its_sha256_and_small() -> None:
    files = sorted(p for p in ASSETS.rglob("*") if p.is_file() and p.name != "README.md")
    assert len(listed()) == 6
    assert [p.relative_to(ASSETS).as_posix() for p in files] == sorted(listed())
    for path in files:
        data = path.read_bytes()
        assert len(data) < MAX_BYTES, path
        assert hashlib.sha256(data).hexdigest() == listed()[path.relative_to(ASSETS).as_posix()], path
