import json
import shutil
from pathlib import Path

import pytest

from datamodules.alpaca_records import (
    SKIP_REASONS,
    RecordError,
    iter_alpaca_records,
    new_skip_report,
    resolve_alpaca_inputs,
)


@pytest.mark.shared_data
def test_edge_case_file_skips_empty_output_and_drops_placeholder_inputs(shared_data: Path):
    path = shared_data / "alpaca_zh" / "alpaca_data_zh_51k_edgecases.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    report = new_skip_report()
    records = list(iter_alpaca_records(path, report=report))
    empty = [r for r in raw if not r["output"].strip()]
    assert empty and len(records) == len(raw) - len(empty)
    assert report.counts["empty_output"] == len(empty) and report.total == len(empty)
    assert "alpaca_data_zh_51k_edgecases.json:" in report.examples[0]
    by_instruction = {r.instruction: r for r in records}
    for row in raw:
        if row["input"] in ("无输入", "Noinuput"):
            assert by_instruction[row["instruction"]].prompt_instruction == row["instruction"]
    kept = list(iter_alpaca_records(path, empty_output="keep"))
    assert len(kept) == len(raw)


def test_json_array_records_know_their_line_and_index(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n\n  {"instruction": "c",\n   "output": "d"}, {"指示": "e", "输出": "f"}]')
    assert [(r.line, r.index, r.instruction) for r in iter_alpaca_records(path)] == [(2, 0, "a"), (4, 1, "c"), (5, 2, "e")]


@pytest.mark.shared_data
def test_chinese_keys_are_read(shared_data: Path):
    path = shared_data / "alpaca_zh" / "alpaca_data_zh_1517.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    index = next(i for i, r in enumerate(raw) if "指示" in r)
    record = next(r for r in iter_alpaca_records(path) if r.index == index)
    assert record.instruction == raw[index]["指示"] and record.output == raw[index]["输出"]


def bad_jsonl(tmp_path: Path) -> Path:
    rows = [
        json.dumps({"instruction": "好", "input": "", "output": "行"}, ensure_ascii=False),
        "{not json",
        "[1, 2]",
        json.dumps({"instruction": "缺输出"}, ensure_ascii=False),
        json.dumps({"instruction": 3, "output": "x"}),
        json.dumps({"instruction": " ", "input": "无输入", "output": "x"}, ensure_ascii=False),
        json.dumps({"instruction": "空", "input": None, "output": ""}, ensure_ascii=False),
        "",
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(("\n".join(rows) + "\n").encode() + b"\xff\xfe\n")
    return path


def test_every_record_skip_reason_is_counted(tmp_path: Path):
    report = new_skip_report()
    records = list(iter_alpaca_records(bad_jsonl(tmp_path), on_bad_record="skip", report=report))
    assert [r.output for r in records] == ["行"]
    expected = dict.fromkeys(SKIP_REASONS, 1) | {"no_label_after_truncation": 0, "unreadable_file": 0}
    assert report.counts == expected


def test_malformed_record_error_names_file_line_and_fix(tmp_path: Path):
    with pytest.raises(RecordError, match=r"bad\.jsonl:2 \(record 1\): invalid JSON.*on_bad_record=skip"):
        list(iter_alpaca_records(bad_jsonl(tmp_path)))


def test_broken_json_array_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": }\n]\n')
    with pytest.raises(RecordError, match=r"broken\.json:3: invalid JSON"):
        list(iter_alpaca_records(path))
    path.write_text('{"instruction": "a", "output": "b"}')
    with pytest.raises(RecordError, match=r"broken\.json:1: expected '\['.*use \.jsonl"):
        list(iter_alpaca_records(path))


def test_resolve_inputs_directory_glob_and_refusals(alpaca_sample: Path, tmp_path: Path):
    folder = tmp_path / "alpaca"
    (folder / "sub").mkdir(parents=True)
    for name in ("sub/c.jsonl.gz", "b_demo.json", "a.jsonl", "notes.md"):
        shutil.copy(alpaca_sample, folder / name)
    files = resolve_alpaca_inputs(folder)
    assert [f.relative_to(folder).as_posix() for f in files] == ["a.jsonl", "b_demo.json", "sub/c.jsonl.gz"]
    assert resolve_alpaca_inputs(str(folder / "*demo*.json")) == [(folder / "b_demo.json").resolve()]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="notes.txt: unsupported input file type; use one of .jsonl.gz, .jsonl, .json"):
        resolve_alpaca_inputs(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="input not found"):
        resolve_alpaca_inputs(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="directory holds no .jsonl.gz/.jsonl/.json files"):
        resolve_alpaca_inputs(tmp_path / "empty")


def test_a_truncated_jsonl_gz_is_named_or_counted(tmp_path: Path):
    import gzip

    lines = "".join(json.dumps({"instruction": f"问题{i}", "output": "答案" * 200}) + "\n" for i in range(50))
    data = gzip.compress(lines.encode("utf-8"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordError, match=r"cut\.jsonl\.gz:\d+ \(record \d+\): truncated"):
        list(iter_alpaca_records(path))
    report = new_skip_report()
    kept = list(iter_alpaca_records(path, on_bad_record="skip", report=report))
    assert 0 < len(kept) < 50 and report.counts["unreadable_file"] == 1 and report.total == 1
