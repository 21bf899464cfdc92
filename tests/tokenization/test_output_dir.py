import pytest

from tokenization.output_dir import atomic_directory


def test_success_replaces_a_previous_output_at_once(tmp_path) -> None:
    out = tmp_path / "tok"
    for content in ("old", "new"):
        with atomic_directory(out) as staging:
            (staging / "tokenizer.json").write_text(content)
    assert (out / "tokenizer.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]  # no staging or retired leftovers


def test_failure_leaves_nothing_behind(tmp_path) -> None:
    out = tmp_path / "tok"
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as staging:
            (staging / "tokenizer.model").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_with_other_files_is_not_replaced(tmp_path) -> None:
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "model.safetensors").write_text("weights")
    with pytest.raises(FileExistsError, match=r"tok: directory exists and holds other files \(model\.safetensors\)"):
        with atomic_directory(tmp_path / "tok"):
            pass
    assert (tmp_path / "tok" / "model.safetensors").read_text() == "weights"
