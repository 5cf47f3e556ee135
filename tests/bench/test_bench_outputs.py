"""The files and the console output of a bench run, and the command's error paths."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from bench_helpers import BENCH_SLOTS, SmokeRun, invoke
from click.testing import CliRunner

from terminal.cli import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_chart_and_summary_are_written(smoke_run: SmokeRun) -> None:
    chart = smoke_run.out / "latency.png"
    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    assert chart.stat().st_size > 10_000
    summary = (smoke_run.out / "summary.md").read_text(encoding="utf-8")
    for name in smoke_run.doc["sections"]:
        assert f"### {name}" in summary
    for figure in smoke_run.figures():
        assert figure["label"] in summary
    assert not list(smoke_run.out.glob("*.tmp"))


def test_console_lists_every_figure(smoke_run: SmokeRun) -> None:
    lines = smoke_run.result.stdout.splitlines()
    for figure in smoke_run.figures():
        assert any(line.startswith(figure["id"] + " ") for line in lines), figure["id"]
    assert "results.json" in lines[-1]
    assert "bench: section apdu: start" in smoke_run.result.stderr


def test_json_mode_prints_one_object(tmp_path: Path, smoke_run: SmokeRun) -> None:
    result = invoke(
        ["--smoke", "--only", "crypto", "--slots", BENCH_SLOTS, "--out", str(tmp_path)],
        obj=SimpleNamespace(json=True),
    )
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["results"] == str(tmp_path / "results.json")
    assert payload["failed_sections"] == {}
    assert {row["id"] for row in payload["summary"]} >= {"crypto.sm3", "crypto.sm3.gmssl"}
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert list(doc["sections"]) == ["crypto"]


def test_a_section_that_cannot_run_fails_after_writing_results(tmp_path: Path, smoke_run: SmokeRun) -> None:
    # one slot is not enough for the APDU round trip (it needs two)
    result = invoke(
        ["--smoke", "--only", "apdu", "--only", "crypto", "--slots", "14", "--out", str(tmp_path)]
    )
    assert result.exit_code == 3
    assert "section apdu" in result.stderr
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    apdu = doc["sections"]["apdu"]
    assert apdu["status"] == "failed"
    assert apdu["figures"] == []
    assert apdu["error"]["error"] == "bench_setup_error"
    assert apdu["error"]["national_code"] == -1901
    assert doc["sections"]["crypto"]["status"] == "ok"


def test_bad_slot_list_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke(["--smoke", "--slots", "14-99", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad slot range" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_bad_slot_list_in_json_mode(tmp_path: Path) -> None:
    result = invoke(["--smoke", "--slots", "x", "--out", str(tmp_path)], obj=SimpleNamespace(json=True))
    assert result.exit_code == 1
    error = json.loads(result.stderr)
    assert error["error"] == "bench_error"
    assert error["national_code"] == -1900
    assert result.stdout == ""


def test_unknown_section_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["--only", "nonsense", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = invoke(["--smoke", "--only", "crypto", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "bench_output_error" in result.stderr


def test_root_cli_runs_the_bench_with_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--json", "bench", "--smoke", "--only", "crypto", "--out", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["chart"] == str(tmp_path / "latency.png")
    assert (tmp_path / "summary.md").exists()
