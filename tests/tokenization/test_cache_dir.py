from pathlib import Path

import pytest

from tokenization.cache_dir import default_cache_dir


def test_override_then_xdg_cache_home_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("ZHLLAMA_X", raising=False)
    assert default_cache_dir("tokens", "ZHLLAMA_X") == tmp_path / "home" / ".cache" / "zhllama" / "tokens"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir("tokens", "ZHLLAMA_X") == tmp_path / "xdg" / "zhllama" / "tokens"
    monkeypatch.setenv("ZHLLAMA_X", "~/mine")
    assert default_cache_dir("tokens", "ZHLLAMA_X") == tmp_path / "home" / "mine"
    assert default_cache_dir("demo_assets") == tmp_path / "xdg" / "zhllama" / "demo_assets"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset, as the XDG specification says
    assert default_cache_dir("tokens") == tmp_path / "home" / ".cache" / "zhllama" / "tokens"
