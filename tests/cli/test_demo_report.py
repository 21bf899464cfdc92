"""The demo's picture is a PNG of both panels, written atomically where asked, also when a stage has no figure."""

from __future__ import annotations

from pathlib import Path

from cli.demo_report import report_figure, write_report

STAGES = [("stage 1: embedding-only", 15.2, 14.1), ("stage 2: LoRA", 14.1, 9.8), ("SFT: Alpaca", None, 8.7)]
TOKENS = {"all characters": (1.2, 0.8), "CJK characters": (1.44, 0.84)}


def test_report_is_a_png_with_both_panels(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out" / "report.png", STAGES, TOKENS)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert [p.name for p in path.parent.iterdir()] == ["report.png"]
    left, right = report_figure(STAGES, TOKENS).axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["stage 1", "stage 2", "SFT"]
    assert [round(b.get_height(), 2) for b in right.patches] == [1.2, 1.44, 0.8, 0.84]
