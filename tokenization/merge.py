"""``zhllama tokenizer merge``: extend a base SentencePiece model with an added one and write a HF tokenizer dir.

Two modes: ``anchor`` reproduces Chinese-LLaMA-Alpaca's merge byte for byte (:mod:`merge_anchor`); ``clean``,
the default, adds only reachable CJK pieces with distinct scores (:mod:`merge_clean`). Either way the output
directory holds ``tokenizer.model`` plus the Hugging Face files (:mod:`hf_tokenizer_files`), a
``merge_report.json`` saying what was added, skipped and dropped, and zhllama's output marker: it is written
all at once (:mod:`atomic_write`), replaces only an earlier zhllama output, and may not be the directory of
``--base`` or ``--add``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Literal

from tokenization.atomic_write import atomic_directory, check_output
from tokenization.hf_tokenizer_files import write_hf_tokenizer_files
from tokenization.merge_anchor import anchor_merge
from tokenization.merge_clean import check_mergeable, clean_merge, require_bpe_base
from tokenization.reachability import unreachable_piece_ids
from tokenization.sentencepiece_proto import load_model_proto, resolve_model_file

MergeMode = Literal["clean", "anchor"]
MODES: tuple[str, ...] = ("clean", "anchor")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def merge_tokenizers(
    base: str | Path,
    add: str | Path,
    output: str | Path,
    mode: MergeMode = "clean",
    pad_token: str | None = None,
) -> dict:
    """Merges ``add`` into ``base`` and writes the tokenizer directory ``output``; returns the merge report."""
    if mode not in MODES:
        raise ValueError(f"unknown merge mode {mode!r}; use one of {', '.join(MODES)}")
    inputs = (Path(base), Path(add))
    output = check_output(Path(output), inputs, kind="tokenizer")  # refuse before any work
    base_file, add_file = resolve_model_file(base), resolve_model_file(add)
    base_proto, add_proto = load_model_proto(base_file), load_model_proto(add_file)
    require_bpe_base(base_proto, str(base_file))
    if mode == "anchor":
        check_mergeable(base_proto, add_proto, str(base_file), str(add_file))
        merged, details = anchor_merge(base_proto, add_proto, pad_token)
    else:
        merged, details = clean_merge(base_proto, add_proto, pad_token, str(base_file), str(add_file))
    new_ids = range(len(base_proto.pieces), len(merged.pieces))
    report = {
        "mode": mode,
        "base": str(base_file),
        "base_sha256": sha256_file(base_file),
        "add": str(add_file),
        "add_sha256": sha256_file(add_file),
        "pad_token": pad_token,
        **dataclasses.asdict(details),
        "unreachable_added_pieces": len(unreachable_piece_ids(merged, new_ids)),
    }
    with atomic_directory(output, kind="tokenizer", inputs=(*inputs, base_file, add_file)) as staging:
        write_hf_tokenizer_files(merged, staging, pad_token)
        report["tokenizer_model_sha256"] = sha256_file(staging / "tokenizer.model")
        (staging / "merge_report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    report["output"] = str(output)
    return report
