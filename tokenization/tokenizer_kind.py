"""Which of the two tokenizer kinds a path holds, so ``merge`` and ``stats`` take either.

- ``sentencepiece``: a SentencePiece ``.model`` (LLaMA-1/2, Mistral v1), or a directory holding ``tokenizer.model``
  (a merge of this project's SentencePiece path writes one beside its ``tokenizer.json``);
- ``byte_level``: anything else: a ``tokenizer.json``, a directory holding only that, a ``.gguf``, a Tekken file
  (:mod:`tokenization.byte_level_base` checks that it really is a byte-level BPE).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

TokenizerKind = Literal["sentencepiece", "byte_level"]


def tokenizer_kind(path: str | Path) -> TokenizerKind:
    path = Path(path).expanduser()
    if path.is_dir():
        return "sentencepiece" if (path / "tokenizer.model").is_file() else "byte_level"
    return "sentencepiece" if path.suffix == ".model" else "byte_level"
