"""The tokenizer spec the cache builder hands to its workers is exactly what AutoTokenizer loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from datamodules.token_cache_builder import _loads_as_tokenizers_backend, load_tokenizer_spec


def auto_tokenizer_spec(path: Path) -> tuple[str, int, int, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    return tok.backend_tokenizer.to_str(), tok.bos_token_id, tok.eos_token_id, len(tok)


@pytest.mark.parametrize("directory", ["zh_tokenizer_dir", "zh_tokenizer_dir_with_pad", "anchor_dir"])
def test_direct_load_of_merge_output_equals_auto_tokenizer(directory, request) -> None:
    path = request.getfixturevalue(directory)
    assert _loads_as_tokenizers_backend(path)  # what `zhllama tokenizer merge` writes takes the short way
    spec = load_tokenizer_spec(path)
    backend, bos, eos, size = auto_tokenizer_spec(path)
    assert (spec.backend_json, spec.bos_id, spec.eos_id) == (backend, bos, eos)
    assert spec.dtype == ("uint16" if size <= 65536 else "uint32")


def test_anything_else_goes_through_auto_tokenizer(zh_tokenizer_dir, tmp_path) -> None:
    cases = {
        "model_config": lambda d: (d / "config.json").write_text(json.dumps({"model_type": "llama"})),
        "auto_map": lambda d: _edit_config(d, auto_map={"AutoTokenizer": [None, "custom.Tokenizer"]}),
        "other_class": lambda d: _edit_config(d, tokenizer_class="LlamaTokenizer"),
        "no_config": lambda d: (d / "tokenizer_config.json").unlink(),
    }
    for name, change in cases.items():
        copy = tmp_path / name
        shutil.copytree(zh_tokenizer_dir, copy)
        change(copy)
        assert not _loads_as_tokenizers_backend(copy), name


def _edit_config(directory: Path, **changes) -> None:
    path = directory / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
