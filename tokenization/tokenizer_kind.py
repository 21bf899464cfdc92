"""Which of the two tokenizer kinds a path holds, so ``merge`` and ``stats`` take either.

- ``sentencepiece``: a SentencePiece model file, whatever its name (``tokenizer.model``, mistral-common's
  ``tokenizer.model.v1``), or a directory holding ``tokenizer.model`` (a merge of this project's SentencePiece
  path writes one beside its ``tokenizer.json``);
- ``byte_level``: a JSON file (``tokenizer.json``, a Tekken file), a ``.gguf`` file, or a directory without
  ``tokenizer.model`` (:mod:`tokenization.byte_level_base` checks that it really is a byte-level BPE).

A file is told by its first bytes, not its name: a SentencePiece model is a protobuf, never JSON or GGUF. A path
that does not exist goes by its suffix, so the right loader names it and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

TokenizerKind = Literal["sentencepiece", "byte_level"]


def tokenizer_kind(path: str | Path) -> TokenizerKind:
    path = Path(path).expanduser()
    if path.is_dir():
        return "sentencepiece" if (path / "tokenizer.model").is_file() else "byte_level"
    if not path.is_file():  # the loader of the kind its name suggests says what is missing and what to pass
        return "byte_level" if path.suffix in (".json", ".gguf") else "sentencepiece"
    with open(path, "rb") as handle:
        head = handle.read(64).lstrip()
    return "byte_level" if head.startswith((b"{", b"GGUF")) else "sentencepiece"
