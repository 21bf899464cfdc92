"""Streaming reader for the plain-text corpora every stage starts from.

One document is one line: a `.txt` line or a JSON object with a text field (the
`wiki_zh` layout, optionally gzipped); blank lines separate documents and are not records. Files are read line
by line so that a corpus of any size streams through in constant memory. A bad record either stops the run with
``file:line``, what is wrong and how to fix it (a :class:`~tokenization.errors.UserError`), or
(``on_bad_record="skip"``) is counted by reason in a :class:`SkipReport` -- never dropped silently. A damaged
compressed file (truncated, or not gzip at all) is one such bad record: under ``skip`` the lines before the
damage are kept and the rest of the file is counted once as ``unreadable_file``.
"""

from __future__ import annotations

import glob
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from tokenization.errors import UserError

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
    "unreadable_file",
)


class BadRecordError(UserError):
    """A record that cannot become a document, raised under ``on_bad_record="error"``."""


class UnreadableFileError(UserError):
    """A compressed input that cannot be read to its end, raised under ``on_bad_record="error"``."""


class InputNotFoundError(UserError, FileNotFoundError):
    """An input path, directory or glob that names no corpus file."""


class UnsupportedInputError(UserError, ValueError):
    """An input file of a type the reader does not understand."""


class RejectedRecord(Exception):
    """Internal signal: the line (or, for ``unreadable_file``, the rest of the file from ``line``) is unusable."""

    def __init__(self, reason: str, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.line = line


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
    raise UnsupportedInputError(
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
        raise InputNotFoundError(f"no inputs given: pass a file, a directory or a glob of {kinds} files")
    unique: dict[Path, None] = {}
    for item in items:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_file():
            if not wanted(path):
                raise UnsupportedInputError(f"{path}: unsupported input file type; use one of {', '.join(suffixes)}")
            found = [path]
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if wanted(p))
            if not found:
                raise InputNotFoundError(f"{path}: directory holds no {kinds} files")
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if wanted(Path(p)))
            if not found:
                raise InputNotFoundError(f"{text}: glob matches no {kinds} files")
        else:
            raise InputNotFoundError(f"{text}: input not found; check the path (files, directories and globs work)")
        for f in found:
            unique.setdefault(f.resolve(), None)
    return list(unique)


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number from 1, raw line)`` of ``path``; a damaged compressed file yields the lines before the
    damage, then raises :class:`RejectedRecord` (``unreadable_file``, ``line`` = the first line not read)."""
    number = 0
    try:
        with open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw
    except gzip.BadGzipFile as exc:
        raise RejectedRecord("unreadable_file", f"not a valid gzip file ({exc})", number + 1) from None
    except EOFError:
        raise RejectedRecord("unreadable_file", "truncated: the gzip stream ends early", number + 1) from None
    except zlib.error as exc:
        raise RejectedRecord("unreadable_file", f"corrupt gzip data ({exc})", number + 1) from None


def parse_line(raw: bytes, kind: Literal["txt", "jsonl"], text_field: str = "text") -> str | None:
    """Turns one raw line (terminator included or not) into document text, None for a blank line (a separator,
    not a record), or raises :class:`RejectedRecord`."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("invalid_utf8", f"invalid UTF-8 at byte {exc.start}") from None
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if kind == "txt":
        text = line
    else:
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


def rejection_error(path: Path | str, reason: str, line: int, detail: str) -> UserError:
    """The error for a rejected record (or damaged file) under ``on_bad_record="error"``."""
    if reason == "unreadable_file":
        return UnreadableFileError(
            f"{path}: unreadable from line {line}: {detail}. Re-create or re-download it (`gzip -t FILE` tests one), "
            "or set on_bad_record=skip (--on_bad_record skip) to keep the lines before the damage and count the "
            "rest of the file as skipped."
        )
    return BadRecordError(bad_record_message(path, line, detail))


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

    def reject(path: Path, line: int, rejected: RejectedRecord) -> None:
        if on_bad_record == "error":
            raise rejection_error(path, rejected.reason, line, rejected.detail) from None
        if report is not None:
            report.add(rejected.reason, path, line, rejected.detail)

    for path in paths:
        kind = file_kind(path)
        try:
            for number, raw in numbered_lines(path):
                try:
                    text = parse_line(raw, kind, text_field)
                except RejectedRecord as rejected:
                    reject(path, number, rejected)
                    continue
                if text is not None:
                    yield Document(text=text, path=path, line=number)
        except RejectedRecord as damaged:  # the rest of the file cannot be read
            reject(path, damaged.line or 1, damaged)
