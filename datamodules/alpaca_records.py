"""Reader for Alpaca-format instruction data: JSON arrays (``.json``) and JSON lines (``.jsonl[.gz]``).

Each record holds ``instruction``, ``input`` (optional) and ``output`` -- or the Chinese keys 指示/输入/输出 that
part of alpaca_data_zh uses. Every record is located by ``file:line`` (for JSON arrays the line its object
starts on, plus its 0-based index in the array) so an error message points at what to fix. Malformed records
stop the run or (``on_bad_record="skip"``) are counted; records with nothing to learn from (no prompt, empty
output under ``empty_output="skip"``) are always counted, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tokenization.corpus import OnBadRecord, RejectedRecord, SkipReport, numbered_lines, resolve_inputs
from tokenization.errors import UserError
from datamodules.prompt_templates import join_instruction

EmptyOutput = Literal["skip", "keep"]

SUFFIXES: tuple[str, ...] = (".jsonl.gz", ".jsonl", ".json")

#: The field names a record may use, English first.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "指示"),
    "input": ("input", "输入"),
    "output": ("output", "输出"),
}

#: Malformed records: raise under ``on_bad_record="error"``, counted under ``"skip"``.
MALFORMED_REASONS: tuple[str, ...] = (
    "invalid_utf8", "invalid_json", "not_an_object", "missing_field", "non_string_field", "unreadable_file"
)
#: Well-formed records with nothing to train on.
EMPTY_REASONS: tuple[str, ...] = ("empty_instruction", "empty_output")
#: Every reason a record can be skipped for, including the ones decided after tokenization.
SKIP_REASONS: tuple[str, ...] = MALFORMED_REASONS + EMPTY_REASONS + ("no_label_after_truncation",)


def new_skip_report() -> SkipReport:
    """A :class:`SkipReport` that lists every Alpaca skip reason, zeros included."""
    return SkipReport(counts=dict.fromkeys(SKIP_REASONS, 0))


@dataclass(frozen=True)
class AlpacaRecord:
    instruction: str
    input: str
    output: str
    path: Path
    line: int  # 1-based line the record starts on
    index: int  # 0-based position in its file

    @property
    def prompt_instruction(self) -> str:
        """Instruction and input joined as Chinese-Alpaca joins them (placeholder inputs dropped)."""
        return join_instruction(self.instruction, self.input)


class RecordError(UserError, ValueError):
    """A malformed record under ``on_bad_record="error"``; the message names file:line and the fix."""


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def resolve_alpaca_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files, directories (recursive) and globs -> sorted, de-duplicated ``.json``/``.jsonl``/``.jsonl.gz`` files."""
    return resolve_inputs(inputs, SUFFIXES)


def _json_array_items(path: Path) -> Iterator[tuple[int, object]]:
    """Yields (line, value) for each element of the JSON array in ``path``, with the line it starts on."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from None
    decoder = json.JSONDecoder()

    def skip_ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n\ufeff":
            pos += 1
        return pos

    def fail(pos: int, what: str) -> RecordError:
        line = text.count("\n", 0, pos) + 1
        return RecordError(f"{path}:{line}: {what}; a .json file must hold one JSON array of records (use .jsonl for one record a line)")

    pos = skip_ws(0)
    if pos >= len(text) or text[pos] != "[":
        raise fail(pos, "expected '[' at the start of the file")
    pos = skip_ws(pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, f"invalid JSON: {exc.msg}") from None
        yield text.count("\n", 0, pos) + 1, value
        pos = skip_ws(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(pos + 1)
        elif pos < len(text) and text[pos] == "]":
            if skip_ws(pos + 1) < len(text):
                raise fail(pos + 1, "unexpected text after the closing ']'")
            return
        else:
            raise fail(pos, "expected ',' or ']' after a record")


def _json_lines_items(path: Path) -> Iterator[tuple[int, object]]:
    """Yields (line, value) per non-blank line; undecodable lines, and the rest of a damaged compressed file,
    yield a :class:`_Rejected` as the value."""
    try:
        for line, raw in numbered_lines(path):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line, _Rejected("invalid_utf8", f"invalid UTF-8 at byte {exc.start}")
                continue
            if not text.strip():
                continue
            try:
                yield line, json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, _Rejected("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RejectedRecord as rejected:
        yield rejected.line, _Rejected(rejected.reason, rejected.detail)


def _field(record: dict, name: str, required: bool) -> str:
    for key in FIELD_NAMES[name]:
        if key in record:
            value = record[key]
            if value is None and not required:
                return ""
            if not isinstance(value, str):
                raise _Rejected("non_string_field", f"field {key!r} is {type(value).__name__}, not a string")
            return value
    if required:
        keys = " or ".join(repr(k) for k in FIELD_NAMES[name])
        raise _Rejected("missing_field", f"no field {keys} (fields: {', '.join(map(str, record))})")
    return ""


def _parse(value: object, empty_output: EmptyOutput) -> tuple[str, str, str]:
    if isinstance(value, _Rejected):
        raise value
    if not isinstance(value, dict):
        raise _Rejected("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    instruction = _field(value, "instruction", required=True)
    input_ = _field(value, "input", required=False)
    output = _field(value, "output", required=True)
    if not join_instruction(instruction, input_).strip():
        raise _Rejected("empty_instruction", "instruction and input are both empty")
    if not output.strip() and empty_output == "skip":
        raise _Rejected("empty_output", "empty output (empty_output=keep trains on EOS alone)")
    return instruction, input_, output


def iter_alpaca_records(
    inputs: str | Path | Sequence[str | Path],
    on_bad_record: OnBadRecord = "error",
    empty_output: EmptyOutput = "skip",
    report: SkipReport | None = None,
) -> Iterator[AlpacaRecord]:
    """Yields every usable record in file order; the rest raise (malformed, under "error") or go to ``report``."""
    if on_bad_record not in ("error", "skip"):
        raise ValueError(f"on_bad_record must be 'error' or 'skip', not {on_bad_record!r}")
    if empty_output not in ("skip", "keep"):
        raise ValueError(f"empty_output must be 'skip' or 'keep', not {empty_output!r}")
    for path in resolve_alpaca_inputs(inputs):
        items = _json_lines_items(path) if path.name.lower().endswith((".jsonl", ".jsonl.gz")) else _json_array_items(path)
        for index, (line, value) in enumerate(items):
            try:
                instruction, input_, output = _parse(value, empty_output)
            except _Rejected as rejected:
                where = f"{path}:{line} (record {index})"
                if rejected.reason in MALFORMED_REASONS and on_bad_record == "error":
                    raise RecordError(
                        f"{where}: {rejected.detail}. Fix or remove that record, or set on_bad_record=skip to "
                        "skip malformed records (they are counted and reported)."
                    ) from None
                if report is not None:
                    report.add(rejected.reason, f"{path}", line, f"record {index}: {rejected.detail}")
                continue
            yield AlpacaRecord(instruction, input_, output, path, line, index)
