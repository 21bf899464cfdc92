"""Tokenizes a streamed corpus in worker processes, returning framed token ids chunk by chunk, in order.

The parent only reads raw lines and appends results; JSON parsing, validation and tokenization happen in
the workers. At most ``2 * num_proc`` chunks (``chunk_bytes`` of raw text each) are in flight, so memory
stays flat however large the corpus is. Workers are started with ``spawn`` and import only this module,
:mod:`tokenization.corpus`, numpy and the ``tokenizers`` and ``sentencepiece`` libraries -- not transformers
or torch -- so each costs tens of MB, not a copy of the parent. Results do not depend on ``num_proc`` or
``chunk_bytes``.
As with any ``spawn`` pool, each worker re-imports the parent's ``__main__`` script (not ``python -m`` modules),
so a script calling this with ``num_proc > 1`` needs an ``if __name__ == "__main__":`` guard and should keep
heavy imports under it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from tokenization.corpus import OnBadRecord, RejectedRecord, file_kind, numbered_lines, parse_line
from datamodules.document_encoder import DocumentEncoder
from tokenization.sentencepiece_equivalent import SentencePieceEquivalent


@dataclass(frozen=True)
class TokenizerSpec:
    """What a worker needs to tokenize exactly like the parent's Hugging Face tokenizer."""

    backend_json: str  # ``tokenizer.backend_tokenizer.to_str()``
    bos_id: int
    eos_id: int
    dtype: str  # numpy dtype name of the token file
    fast_path: SentencePieceEquivalent | None = None  # SentencePiece, where proven to give the same ids


@dataclass(frozen=True)
class Chunk:
    file_index: int
    first_line: int  # 1-based line number of lines[0]
    lines: list[bytes]
    damage: tuple[str, int, str] | None = None  # the rest of the file is unreadable: (reason, line, detail)


@dataclass
class TokenizedChunk:
    file_index: int
    ids: np.ndarray  # every kept document, BOS ... EOS, concatenated
    doc_lengths: np.ndarray  # int64 token count per kept document, framing included
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (reason, line, detail)
    reference_documents: int = 0  # kept documents encoded by ``tokenizers`` rather than SentencePiece
    error: tuple[str, int, str] | None = None  # first bad record under on_bad_record="error": (reason, line, detail)


def read_chunks(paths: Sequence[Path], chunk_bytes: int) -> Iterator[Chunk]:
    """Raw lines of every file, grouped into chunks of about ``chunk_bytes``; a chunk never spans files.

    A damaged compressed file ends with a chunk carrying the damage (after the lines before it).
    """
    for file_index, path in enumerate(paths):
        lines: list[bytes] = []
        size, first = 0, 1
        damage: tuple[str, int, str] | None = None
        try:
            for number, raw in numbered_lines(path):
                lines.append(raw)
                size += len(raw)
                if size >= chunk_bytes:
                    yield Chunk(file_index, first, lines)
                    lines, size, first = [], 0, number + 1
        except RejectedRecord as rejected:
            damage = (rejected.reason, rejected.line or first + len(lines), rejected.detail)
        if lines or damage is not None:
            yield Chunk(file_index, first, lines, damage)


class ChunkTokenizer:
    """Turns a chunk of raw lines into framed token ids. One per worker process."""

    def __init__(
        self,
        spec: TokenizerSpec,
        kinds: Sequence[str],
        text_field: str,
        on_bad_record: OnBadRecord,
        threads: int = 1,
    ) -> None:
        self.encoder = DocumentEncoder(spec.backend_json, spec.fast_path, threads)
        self.spec = spec
        self.dtype = np.dtype(spec.dtype)
        self.kinds = list(kinds)
        self.text_field = text_field
        self.on_bad_record = on_bad_record

    def __call__(self, chunk: Chunk) -> TokenizedChunk:
        kind = self.kinds[chunk.file_index]
        texts: list[str] = []
        result = TokenizedChunk(chunk.file_index, np.zeros(0, self.dtype), np.zeros(0, np.int64))
        rejections: list[tuple[str, int, str]] = []
        for offset, raw in enumerate(chunk.lines):
            try:
                text = parse_line(raw, kind, self.text_field)  # type: ignore[arg-type]
            except RejectedRecord as rejected:
                rejections.append((rejected.reason, chunk.first_line + offset, rejected.detail))
                continue
            if text is not None:
                texts.append(text)
        if chunk.damage is not None:
            rejections.append(chunk.damage)
        if rejections and self.on_bad_record == "error":
            result.error = rejections[0]
            return result
        result.skipped = rejections
        encoded, result.reference_documents = self.encoder.encode(texts)
        bos, eos = [self.spec.bos_id], [self.spec.eos_id]
        runs: list[list[int]] = []
        lengths = np.empty(len(encoded), dtype=np.int64)
        for i, doc_runs in enumerate(encoded):
            runs += (bos, *doc_runs, eos)
            lengths[i] = 2 + sum(map(len, doc_runs))
        # one pass over every id, straight into the array
        result.ids = np.fromiter(chain.from_iterable(runs), dtype=self.dtype, count=int(lengths.sum()))
        result.doc_lengths = lengths
        return result


_worker: ChunkTokenizer | None = None


def _init_worker(spec: TokenizerSpec, kinds: Sequence[str], text_field: str, on_bad_record: OnBadRecord) -> None:
    global _worker
    # One thread per worker: the processes are the parallelism; Rust threads on top only oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker = ChunkTokenizer(spec, kinds, text_field, on_bad_record)


def _tokenize_in_worker(chunk: Chunk) -> TokenizedChunk:
    assert _worker is not None, "worker used before its initializer ran"
    return _worker(chunk)


def tokenize_corpus(
    paths: Sequence[Path],
    spec: TokenizerSpec,
    *,
    text_field: str = "text",
    on_bad_record: OnBadRecord = "error",
    num_proc: int = 1,
    chunk_bytes: int = 1 << 20,
) -> Iterator[TokenizedChunk]:
    """Yields the tokenized chunks of ``paths`` in corpus order, ``num_proc`` processes tokenizing in parallel.

    ``num_proc=1`` tokenizes in this process (the encoders may still use several threads).
    """
    kinds = [file_kind(p) for p in paths]
    chunks = read_chunks(paths, chunk_bytes)
    if num_proc <= 1:
        tokenize = ChunkTokenizer(spec, kinds, text_field, on_bad_record, threads=-1)  # -1: all cores
        for chunk in chunks:
            yield tokenize(chunk)
        return
    # An executor, not multiprocessing.Pool: a worker that dies raises BrokenProcessPool instead of hanging.
    pool = ProcessPoolExecutor(
        num_proc,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(spec, kinds, text_field, on_bad_record),
    )
    pending: deque[Future[TokenizedChunk]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_tokenize_in_worker, chunk))
            if len(pending) >= 2 * num_proc:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
