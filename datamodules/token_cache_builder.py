"""Builds (or reuses) the token cache of a corpus: the work behind ``WikiBlocksDataModule.prepare``.

Kept free of Lightning and torch so that ``zhllama data prepare`` and the benchmark measure only what the
preparation needs: a streaming reader, tokenizer processes and an append-only token file. Only the
tokenizer (a directory or a ``.gguf``) is read through transformers (for its BOS/EOS ids and exact backend).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.doc_split import validation_mask
from datamodules.parallel_tokenize import TokenizerSpec, tokenize_corpus
from datamodules.token_cache import (
    TokenCache,
    TokenCacheWriter,
    build_cache,
    cache_key,
    cache_root,
    input_fingerprint,
    open_cache,
    token_dtype,
)
from tokenization.corpus import OnBadRecord, SkipReport, rejection_error, resolve_inputs
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf, load_tokenizer
from tokenization.sentencepiece_equivalent import NoEquivalent, build_equivalent


def default_num_proc() -> int:
    """All CPUs this process may use, at most 16 (tokenization stops scaling before the disk does)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(16, cpus))


class TokenizerNotFoundError(UserError, FileNotFoundError):
    """``tokenizer`` names no tokenizer directory."""


class UnusableTokenizerError(UserError, ValueError):
    """The tokenizer directory cannot frame documents (no fast backend, no BOS or EOS)."""


def load_tokenizer_spec(tokenizer: str | Path) -> TokenizerSpec:
    """Reads a Hugging Face tokenizer directory or a ``.gguf``'s tokenizer into what the workers need (its
    BOS/EOS ids included).

    Remembered per directory (file) state, so ``prepare_data`` then ``setup`` in one process load it once.
    """
    path = Path(tokenizer).expanduser()
    if is_gguf(path):
        return _load_tokenizer_spec(path.resolve(), (path.stat().st_size, path.stat().st_mtime_ns))
    if not path.is_dir():
        raise TokenizerNotFoundError(
            f"{tokenizer}: tokenizer directory not found; pass a Hugging Face tokenizer directory "
            "(one written by `zhllama tokenizer merge` or save_pretrained) or a .gguf file"
        )
    state = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()))
    return _load_tokenizer_spec(path.resolve(), state)


def _loads_as_tokenizers_backend(path: Path) -> bool:
    """Whether ``AutoTokenizer.from_pretrained(path)`` is certain to be ``TokenizersBackend.from_pretrained(path)``.

    True for what ``zhllama tokenizer merge`` writes: ``tokenizer_config.json`` naming
    ``PreTrainedTokenizerFast`` (or ``TokenizersBackend``), no ``auto_map`` and no model ``config.json`` (whose
    model type could redirect the choice). Loading that class directly skips AutoTokenizer's model registry,
    which imports torch: seconds saved per ``data prepare`` run, the same tokenizer.
    """
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(config, dict)
        and config.get("tokenizer_class") in ("PreTrainedTokenizerFast", "TokenizersBackend")
        and "auto_map" not in config
        and not (path / "config.json").exists()
    )


@functools.lru_cache(maxsize=4)
def _load_tokenizer_spec(path: Path, state: tuple) -> TokenizerSpec:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if _loads_as_tokenizers_backend(path):
        from transformers import TokenizersBackend

        tok = TokenizersBackend.from_pretrained(path)
    else:
        tok = load_tokenizer(path)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise UnusableTokenizerError(f"{path}: needs a fast (tokenizers-backed) tokenizer; save it with tokenizer.json")
    if tok.bos_token_id is None or tok.eos_token_id is None:
        raise UnusableTokenizerError(f"{path}: the tokenizer has no BOS or EOS token; documents are framed BOS ... EOS")
    return TokenizerSpec(
        backend_json=backend.to_str(),
        bos_id=int(tok.bos_token_id),
        eos_id=int(tok.eos_token_id),
        dtype=token_dtype(len(tok)).name,
    )


@functools.lru_cache(maxsize=4)
def with_fast_path(spec: TokenizerSpec) -> tuple[TokenizerSpec, str]:
    """The spec with SentencePiece enabled where it is proven to give the same ids, and a line saying so.

    The proof takes a second or two for a 50k vocabulary, so it is made once per tokenizer and process.
    """
    try:
        equivalent = build_equivalent(spec.backend_json)
    except NoEquivalent as reason:
        return spec, f"tokenizers only: {reason}"
    proven = equivalent.proven_pieces
    note = f"sentencepiece where proven: {proven} of {proven + equivalent.unsafe_pieces} merged pieces"
    return dataclasses.replace(spec, fast_path=equivalent), note


@dataclass(frozen=True)
class PreparedData:
    """A ready cache plus the numbers ``zhllama data prepare`` reports."""

    cache: TokenCache
    built: bool  # False when an existing cache was reused
    seconds: float  # of this call

    def report(self, block_size: int) -> dict[str, Any]:
        meta = self.cache.meta
        documents = meta["documents"]
        return {
            "documents": documents,
            "train_documents": meta["train_documents"],
            "val_documents": meta["val_documents"],
            "skipped": meta["skipped"],
            "encoded_by": meta.get("encoded_by"),  # None for caches built before it was recorded
            "tokens": meta["tokens"],
            "train_blocks": meta["train_tokens"] // block_size,
            "val_blocks": meta["val_tokens"] // block_size,
            "dropped_tail_tokens": meta["train_tokens"] % block_size + meta["val_tokens"] % block_size,
            "seconds": round(self.seconds, 3),
            "docs_per_s": round(documents / self.seconds, 1) if self.seconds > 0 else None,
            "cache_path": str(self.cache.path),
        }


def prepare_token_cache(
    tokenizer: str | Path,
    inputs: str | Path | Sequence[str | Path],
    *,
    cache_dir: str | Path | None = None,
    text_field: str = "text",
    val_fraction: float = 0.01,
    val_documents: int | None = None,
    seed: int = 42,
    num_proc: int | None = None,
    on_bad_record: OnBadRecord = "error",
    chunk_bytes: int = 1 << 20,
    fast_path: bool = False,
) -> PreparedData:
    """Reuses the cache whose key matches these settings or builds it; safe from any process (atomic).

    ``fast_path`` only changes the speed, and the block size only how the tokens are cut when read: neither is
    part of the cache key.
    """
    start = time.perf_counter()
    cache_dir = cache_root(cache_dir)
    paths = resolve_inputs(inputs)
    spec = load_tokenizer_spec(tokenizer)
    settings = {
        "tokenizer_sha256": hashlib.sha256(f"{spec.backend_json}\0{spec.bos_id}\0{spec.eos_id}".encode()).hexdigest(),
        "val_fraction": None if val_documents is not None else val_fraction,
        "val_documents": val_documents,
        "seed": seed,
        "inputs": input_fingerprint(paths),
        "text_field": text_field,
        "on_bad_record": on_bad_record,
    }
    key = cache_key(settings)
    cache = open_cache(cache_dir, key)
    if cache is not None:
        return PreparedData(cache, False, time.perf_counter() - start)
    spec, fast_path_note = with_fast_path(spec) if fast_path else (spec, "tokenizers only: fast_path is off")

    def fill(writer: TokenCacheWriter) -> tuple[np.ndarray, dict[str, Any]]:
        skipped = SkipReport()
        reference_documents = 0
        chunks = tokenize_corpus(
            paths,
            spec,
            text_field=text_field,
            on_bad_record=on_bad_record,
            num_proc=num_proc or default_num_proc(),
            chunk_bytes=chunk_bytes,
        )
        for chunk in chunks:
            path = paths[chunk.file_index]
            if chunk.error is not None:
                chunks.close()  # stops the workers now
                raise rejection_error(path, *chunk.error)
            for reason, line, detail in chunk.skipped:
                skipped.add(reason, path, line, detail)
            writer.append(chunk.ids, chunk.doc_lengths)
            reference_documents += chunk.reference_documents
        if writer.num_documents == 0:
            raise UserError(
                f"no usable documents in {', '.join(map(str, paths))} (skipped: {skipped.as_dict()}); "
                "check the inputs and --text_field"
            )
        lengths = writer.written_doc_lengths()
        is_val = validation_mask(writer.num_documents, seed, val_fraction, val_documents)
        val_tokens = int(lengths[is_val].sum())
        meta = {
            "settings": settings,
            "train_documents": int((~is_val).sum()),
            "val_documents": int(is_val.sum()),
            "train_tokens": writer.num_tokens - val_tokens,
            "val_tokens": val_tokens,
            "skipped": skipped.as_dict(),
            "encoded_by": {
                "sentencepiece": writer.num_documents - reference_documents,
                "tokenizers": reference_documents,
                "note": fast_path_note,
            },
        }
        return is_val, meta

    cache = build_cache(cache_dir, key, np.dtype(spec.dtype), fill)
    return PreparedData(cache, True, time.perf_counter() - start)
