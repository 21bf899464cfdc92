"""Streaming reader for the plain-text corpora every stage starts from.

One document is one line: a `.txt` line (the anchor's format) or a JSON object with a text field (the
`wiki_zh` layout, optionally gzipped). Files are read line by line so that a corpus of any size streams
through in constant memory. A bad record either stops the run with ``file:line``, what is wrong and how to
fix it, or (``on_bad_record="skip"``) is counted by reason in a :class:`SkipReport` -- never dropped silently.
"""

from __future__ import annotations

import glob
import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

OnBadRecord = Literal["error", "skip"]

#: File suffixes the reader understands, longest first so ``.jsonl.gz`` wins over ``.gz``.
SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl.gz", ".txt.gz", ".jsonl", ".txt")

#: Every reason a record can be rejected for; reports always list all of them.
SKIP_REASONS: tuple[str, ...] = (
    "invalid_utf8",
    "invalid_json",
    "missing_text",
    "non_string_text",
    "empty_document",
)


class BadRecordError(ValueError):
    """A record that cannot become a document, raised under ``on_bad_record="error"``."""


class RejectedRecord(Exception):
    """Internal signal from :func:`parse_line`: the line is not a usable document."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Document:
    text: str
    path: Path
    line: int  # 1-based, so messages match what an editor shows


@dataclass
class SkipReport:
    """Counts of skipped records by reason, with the first few ``file:line`` locations as examples."""

    max_examples: int = 5
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, path: Path | str, line: int, detail: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{path}:{line}: {reason}" + (f" ({detail})" if detail else ""))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"total": self.total, "by_reason": dict(self.counts), "first": list(self.examples)}


def file_kind(path: Path) -> Literal["txt", "jsonl"]:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl" if suffix.startswith(".jsonl") else "txt"
    raise ValueError(
        f"{path}: unsupported input file type; use one of {', '.join(SUPPORTED_SUFFIXES)} "
        "(.txt: one document a line; .jsonl: one JSON object a line with a text field)"
    )


def resolve_inputs(
    inputs: str | Path | Sequence[str | Path], suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES
) -> list[Path]:
    """Expands files, directories (recursively) and glob patterns into a sorted, de-duplicated file list.

    Order is deterministic (sorted within each input, inputs in the order given) because the token cache,
    the validation split and resumption all depend on a stable document order. ``suffixes`` are the file
    types the caller reads; an explicit file of another type is refused rather than ignored.
    """
    kinds = "/".join(suffixes)

    def wanted(path: Path) -> bool:
        return path.is_file() and path.name.lower().endswith(suffixes)

    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise ValueError(f"no inputs given: pass a file, a directory or a glob of {kinds} files")
    unique: dict[Path, None] = {}
    for item in items:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_file():
            if not wanted(path):
                raise ValueError(f"{path}: unsupported input file type; use one of {', '.join(suffixes)}")
            found = [path]
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if wanted(p))
            if not found:
                raise FileNotFoundError(f"{path}: directory holds no {kinds} files")
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if wanted(Path(p)))
            if not found:
                raise FileNotFoundError(f"{text}: glob matches no {kinds} files")
        else:
            raise FileNotFoundError(f"{text}: input not found; check the path (files, directories and globs work)")
        for f in found:
            unique.setdefault(f.resolve(), None)
    return list(unique)


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def parse_line(raw: bytes, kind: Literal["txt", "jsonl"], text_field: str = "text") -> str:
    """Turns one raw line (terminator included or not) into document text, or raises :class:`RejectedRecord`."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("invalid_utf8", f"invalid UTF-8 at byte {exc.start}") from None
    line = line.rstrip("\r\n")
    if kind == "txt":
        text = line
    else:
        if not line.strip():
            raise RejectedRecord("empty_document", "blank line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RejectedRecord("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(record, dict):
            raise RejectedRecord("invalid_json", f"expected a JSON object, got {type(record).__name__}")
        if text_field not in record:
            raise RejectedRecord("missing_text", f"no field {text_field!r} (fields: {', '.join(map(str, record))})")
        text = record[text_field]
        if not isinstance(text, str):
            raise RejectedRecord("non_string_text", f"field {text_field!r} is {type(text).__name__}, not a string")
        try:  # only a JSON escape such as \ud800 can make half a UTF-16 pair: no character at all
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RejectedRecord("invalid_utf8", f"lone surrogate {text[exc.start]!r} at character {exc.start}") from None
    if not text.strip():
        raise RejectedRecord("empty_document", "empty document")
    return text


def bad_record_message(path: Path | str, line: int, detail: str) -> str:
    return (
        f"{path}:{line}: {detail}. Fix or remove that record, or set on_bad_record=skip "
        "(--on_bad_record skip) to skip such records; skipped records are counted and reported."
    )


def iter_documents(
    inputs: str | Path | Sequence[str | Path] | Iterable[Path],
    text_field: str = "text",
    on_bad_record: OnBadRecord = "error",
    report: SkipReport | None = None,
) -> Iterator[Document]:
    """Yields every document of the inputs in order; rejected records raise or go to ``report``."""
    if on_bad_record not in ("error", "skip"):
        raise ValueError(f"on_bad_record must be 'error' or 'skip', not {on_bad_record!r}")
    paths = resolve_inputs(inputs if isinstance(inputs, (str, Path)) else list(inputs))
    for path in paths:
        kind = file_kind(path)
        with open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = parse_line(raw, kind, text_field)
                except RejectedRecord as rejected:
                    if on_bad_record == "error":
                        raise BadRecordError(bad_record_message(path, number, rejected.detail)) from None
                    if report is not None:
                        report.add(rejected.reason, path, number, rejected.detail)
                    continue
                yield Document(text=text, path=path, line=number)
