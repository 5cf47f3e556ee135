"""The results document, the Markdown table, the chart and the machine description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.bench.chart import write_chart
from terminal.bench.errors import BenchOutputError
from terminal.bench.machine import load_average, machine_info
from terminal.bench.report import Figure, Results, SectionResult, latency_figure
from terminal.bench.table import markdown_table


def _results() -> Results:
    results = Results(
        mode="smoke", started_at="2026-01-01T00:00:00+00:00", machine={"cpu_model": "X", "cores": 2}
    )
    ok = SectionResult("apdu")
    floor = ok.add(latency_figure("apdu.floor", "apdu", "floor", [100_000, 200_000, 300_000]))
    ok.add(latency_figure("apdu.card_os", "apdu", "card", [250_000] * 3, anchor=floor, meaning="x floor"))
    ok.add(Figure("apdu.count", "apdu", "count", "apdus", 3.0))
    failed = SectionResult(
        "scale", status="failed", error={"error": "bench_setup_error", "message_en": "no db"}
    )
    results.sections = {"apdu": ok, "scale": failed}
    return results


def test_document_round_trips_through_json(tmp_path: Path) -> None:
    results = _results()
    path = tmp_path / "results.json"
    results.write_json(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "sscard-bench" and doc["version"] == 1
    card = doc["sections"]["apdu"]["figures"][1]
    assert card["ratio"]["value"] == 1.25
    assert card["pass"] is True
    assert doc["sections"]["scale"]["status"] == "failed"
    assert [row["id"] for row in doc["summary"]] == ["apdu.floor", "apdu.card_os", "apdu.count"]


def test_write_json_reports_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(BenchOutputError):
        _results().write_json(tmp_path / "missing" / "results.json")


def test_markdown_table_lists_figures_and_failures() -> None:
    text = markdown_table(_results())
    assert "| card | 250 µs | 250 µs / 250 µs | apdu.floor | 1.25× (x floor) |" in text
    assert "| count | 3 APDUs |" in text
    assert "### scale" in text and "Section failed: no db" in text


def test_chart_needs_timed_figures(tmp_path: Path) -> None:
    results = _results()
    assert write_chart(results, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    empty = Results(mode="smoke", started_at="t", machine={})
    empty.sections["scale"] = SectionResult("scale", status="failed")
    assert not write_chart(empty, tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_machine_description() -> None:
    info = machine_info()
    assert info["cores"] >= 1 and info["python"].startswith("3.")
    assert "pyscard" in info["packages"]
    assert all(value >= 0 for value in load_average())
    json.dumps(info)
