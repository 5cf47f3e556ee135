"""Helpers of the bench tests (the smoke run's container and the command invoker)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from terminal.bench.cli import bench_command

BENCH_SLOTS = "14,15"


@dataclass
class SmokeRun:
    result: Result
    out: Path
    doc: dict[str, Any]

    def figures(self) -> list[dict[str, Any]]:
        return [f for s in self.doc["sections"].values() for f in s["figures"]]

    def figure(self, figure_id: str) -> dict[str, Any]:
        for figure in self.figures():
            if figure["id"] == figure_id:
                return figure
        raise KeyError(figure_id)


def invoke(args: list[str], obj: object = None) -> Result:
    return CliRunner().invoke(bench_command, args, obj=obj, catch_exceptions=False)
