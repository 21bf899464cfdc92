"""``zhllama tokenizer train``: a SentencePiece model trained on Chinese text, streamed from the corpus reader.

Documents come from :func:`tokenization.corpus.iter_documents` and reach SentencePiece through its
``sentence_iterator``, so the corpus is never held in memory; SentencePiece itself keeps at most
``input_sentence_size`` sentences (a shuffled reservoir sample). SentencePiece silently skips sentences longer
than ``max_sentence_length`` bytes, and a Wikipedia article is longer than that, so documents are fed one line
at a time and over-long lines are cut after sentence-ending punctuation (or, failing that, at the byte limit).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sentencepiece as spm

from tokenization.atomic_write import atomic_file
from tokenization.corpus import SkipReport, iter_documents
from tokenization.errors import UserError


class TrainingFailed(UserError, ValueError):
    """SentencePiece refused the options or the data; the message carries its reason and a fix."""


SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])")


@dataclass
class TrainArgs:
    """Options of ``zhllama tokenizer train``; defaults follow Chinese-LLaMA-Alpaca's Chinese model."""

    inputs: Sequence[str | Path]
    """.txt (one document a line), .jsonl or .jsonl.gz files, directories or globs."""
    model_prefix: str | Path
    """Writes ``<model_prefix>.model`` and ``<model_prefix>.vocab``."""
    text_field: str = "text"
    """JSON field holding the text in .jsonl inputs."""
    vocab_size: int = 20000
    character_coverage: float = 0.9995
    """Share of characters covered by the vocabulary; the rarest rest become <unk>."""
    model_type: str = "unigram"
    """unigram, bpe, char or word."""
    input_sentence_size: int = 10_000_000
    """Sentences SentencePiece samples (shuffled) from the stream; 0 keeps all."""
    max_sentence_length: int = 4192
    """Bytes; longer lines are cut at sentence ends before they reach SentencePiece."""
    num_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    on_bad_record: str = "error"
    """error: stop at a bad record naming file:line; skip: count it and go on."""
    seed: int = 0


@dataclass
class ReadCounts:
    documents: int = 0
    chars: int = 0
    sentences: int = 0
    lines_cut: int = 0


def split_long_line(line: str, max_bytes: int) -> list[str]:
    """Cuts a line into pieces of at most ``max_bytes`` UTF-8 bytes, preferably after sentence-ending marks."""
    if len(line.encode("utf-8")) <= max_bytes:
        return [line]
    pieces: list[str] = []
    current = ""
    for sentence in SENTENCE_END.split(line):
        while len(sentence.encode("utf-8")) > max_bytes:  # no sentence end in reach: cut at the byte limit
            head = sentence.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            sentence = sentence[len(head) :]
        if len((current + sentence).encode("utf-8")) > max_bytes:
            pieces.append(current)
            current = sentence
        else:
            current += sentence
    if current:
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def iter_sentences(args: TrainArgs, counts: ReadCounts, report: SkipReport) -> Iterator[str]:
    for doc in iter_documents(args.inputs, args.text_field, args.on_bad_record, report):  # type: ignore[arg-type]
        counts.documents += 1
        counts.chars += len(doc.text)
        for line in doc.text.splitlines():
            if not line.strip():
                continue
            parts = split_long_line(line, args.max_sentence_length)
            counts.lines_cut += len(parts) > 1
            for part in parts:
                counts.sentences += 1
                yield part


class GuardedFeed:
    """Feeds sentences to SentencePiece, keeping an input error (a bad record) to re-raise as itself.

    SentencePiece would otherwise wrap it into an opaque ``RuntimeError: INTERNAL`` with a traceback dump.
    """

    def __init__(self, sentences: Iterator[str]) -> None:
        self.sentences = sentences
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self.sentences
        except Exception as exc:  # noqa: BLE001 - re-raised by train_into once SentencePiece returns
            self.error = exc


def train_into(model_prefix: Path, args: TrainArgs, sentences: Iterator[str]) -> None:
    feed = GuardedFeed(sentences)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(feed),
            model_prefix=str(model_prefix),
            vocab_size=args.vocab_size,
            character_coverage=args.character_coverage,
            model_type=args.model_type,
            input_sentence_size=args.input_sentence_size,
            shuffle_input_sentence=True,
            max_sentence_length=args.max_sentence_length,
            num_threads=args.num_threads,
            minloglevel=2,
        )
    except RuntimeError as exc:
        if feed.error is not None:
            raise feed.error from None
        inputs = ", ".join(map(str, args.inputs))
        raise TrainingFailed(
            f"{inputs}: SentencePiece training failed: {str(exc).split('] ', 1)[-1]} "
            "(fit --vocab_size and --character_coverage to the corpus)"
        ) from None
    if feed.error is not None:  # SentencePiece trained on what came before the bad record: discard that
        raise feed.error


def train_sentencepiece(args: TrainArgs, log: Callable[[str], None] = print) -> dict:
    """Trains the model, writes ``.model``/``.vocab`` (each atomically, only after training succeeded) and
    returns what was read."""
    if args.max_sentence_length < 4:  # one UTF-8 character takes up to 4 bytes: a shorter cut makes no progress
        raise TrainingFailed(f"max_sentence_length must be at least 4 bytes, got {args.max_sentence_length}")
    prefix = Path(args.model_prefix).expanduser().resolve()
    counts, report = ReadCounts(), SkipReport()
    spm.set_random_generator_seed(args.seed)
    outputs = {suffix: prefix.with_name(prefix.name + f".{suffix}") for suffix in ("model", "vocab")}
    with atomic_file(outputs["model"]) as model_file, atomic_file(outputs["vocab"]) as vocab_file:
        scratch = model_file.with_name(model_file.name + ".sp")  # SentencePiece appends .model and .vocab
        try:
            train_into(scratch, args, iter_sentences(args, counts, report))
            os.replace(f"{scratch}.model", model_file)
            os.replace(f"{scratch}.vocab", vocab_file)
        finally:
            for leftover in (f"{scratch}.model", f"{scratch}.vocab"):
                Path(leftover).unlink(missing_ok=True)
    outputs = {suffix: str(path) for suffix, path in outputs.items()}
    result = {**outputs, "read": asdict(counts), "skipped": report.as_dict(), "vocab_size": args.vocab_size}
    log(
        f"read {counts.documents} documents, {counts.chars} characters, {counts.sentences} sentences "
        f"({counts.lines_cut} long lines cut); skipped {report.total} records"
    )
    return result
