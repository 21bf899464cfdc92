import gzip
import json
from pathlib import Path

import pytest

from tokenization.corpus import (
    SKIP_REASONS,
    BadRecordError,
    SkipReport,
    UnreadableFileError,
    iter_documents,
    resolve_inputs,
)
from tokenization.errors import UserError

BAD_LINES = {
    "invalid_json": b'{"text": "broken"\n',
    "missing_text": b'{"title": "no text"}\n',
    "non_string_text": b'{"text": 42}\n',
    "invalid_utf8": b'{"text": "\xff\xfe"}\n',
    "empty_document": b'{"text": "  \\n "}\n',
}


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)))
    return path


def test_reads_real_wiki_sample_in_order(wiki_sample: Path) -> None:
    docs = list(iter_documents(wiki_sample))
    assert len(docs) == 30
    first = json.loads(wiki_sample.open(encoding="utf-8").readline())
    assert docs[0].text == first["text"] and docs[0].line == 1
    assert [d.line for d in docs] == list(range(1, 31))


def test_reads_txt_gz_and_custom_text_field(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("第一行\n第二行\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"content": "压缩的"}, ensure_ascii=False) + "\n")
    assert [d.text for d in iter_documents(tmp_path / "a.txt")] == ["第一行", "第二行"]
    assert [d.text for d in iter_documents(tmp_path / "b.jsonl.gz", text_field="content")] == ["压缩的"]


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_bad_record_errors_with_file_line_and_fix(tmp_path: Path, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok"}\n' + BAD_LINES[reason])
    with pytest.raises(BadRecordError) as info:
        list(iter_documents(path))
    message = str(info.value)
    assert f"{path.resolve()}:2:" in message and "on_bad_record" in message
    assert isinstance(info.value, UserError)  # `zhllama` prints it as one line and exits 2


def test_skip_counts_every_reason(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join([b'{"text": "first"}\n', *BAD_LINES.values(), b'{"text": "last"}\n']))
    report = SkipReport()
    docs = list(iter_documents(path, on_bad_record="skip", report=report))
    assert [d.text for d in docs] == ["first", "last"]
    assert [d.line for d in docs] == [1, 2 + len(BAD_LINES)]
    assert report.counts == {**dict.fromkeys(SKIP_REASONS, 1), "unreadable_file": 0}
    assert report.total == len(BAD_LINES)
    assert report.examples[0].startswith(f"{path.resolve()}:2: ")


@pytest.mark.parametrize("name", ["a.txt", "a.jsonl"])
def test_blank_lines_separate_documents_and_are_not_records(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    lines = ["one", "", "two", "  \t", "\r", "three"]
    if name.endswith(".jsonl"):
        lines = [json.dumps({"text": line}) if line.strip() else line for line in lines]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    report = SkipReport()
    docs = list(iter_documents(path, on_bad_record="skip", report=report))
    assert [(d.text, d.line) for d in docs] == [("one", 1), ("two", 3), ("three", 6)]
    assert report.total == 0
    assert [d.text for d in iter_documents(path)] == ["one", "two", "three"]  # no error either


def truncated_gzip(path: Path, lines: int) -> Path:
    data = "".join(json.dumps({"text": f"第{i}篇文章" * 200}, ensure_ascii=False) + "\n" for i in range(lines))
    packed = gzip.compress(data.encode("utf-8"))
    path.write_bytes(packed[: len(packed) // 2])
    return path


@pytest.mark.parametrize("damage", ["truncated", "fake"])
def test_a_damaged_gzip_is_named_or_counted_once_as_skipped(tmp_path: Path, damage: str) -> None:
    if damage == "truncated":
        path = truncated_gzip(tmp_path / "wiki.jsonl.gz", 400)
        detail = "truncated"
    else:
        path = tmp_path / "wiki.jsonl.gz"
        path.write_text('{"text": "plain text, not gzip"}\n', encoding="utf-8")
        detail = "not a valid gzip file"
    with pytest.raises(UnreadableFileError) as info:
        list(iter_documents(path))
    message = str(info.value)
    assert message.startswith(f"{path.resolve()}: unreadable from line ") and detail in message
    assert "--on_bad_record skip" in message and "\n" not in message
    report = SkipReport()
    docs = list(iter_documents(path, on_bad_record="skip", report=report))
    assert report.counts["unreadable_file"] == report.total == 1
    assert report.examples[0].startswith(f"{path.resolve()}:{len(docs) + 1}: unreadable_file ({detail}")
    if damage == "truncated":
        assert 0 < len(docs) < 400 and all(d.text.startswith(f"第{i}篇") for i, d in enumerate(docs))


def test_resolve_inputs_dirs_globs_and_missing(tmp_path: Path) -> None:
    nested = tmp_path / "corpus" / "AA"
    nested.mkdir(parents=True)
    a = write_jsonl(nested / "wiki_01.jsonl", ["甲"])
    b = write_jsonl(tmp_path / "corpus" / "wiki_00.jsonl", ["乙"])
    (tmp_path / "corpus" / "notes.md").write_text("ignored")
    assert resolve_inputs(tmp_path / "corpus") == [a.resolve(), b.resolve()]
    assert resolve_inputs(str(tmp_path / "corpus" / "**" / "*.jsonl")) == [a.resolve(), b.resolve()]
    assert resolve_inputs([b, a, b]) == [b.resolve(), a.resolve()]
    with pytest.raises(UserError, match="missing.jsonl: input not found"):
        resolve_inputs(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="glob matches no"):
        resolve_inputs(str(tmp_path / "*.jsonl"))
    with pytest.raises(ValueError, match="unsupported input file type"):
        resolve_inputs(tmp_path / "corpus" / "notes.md")
