"""``python -m terminal.bench [options]``: the bench without the root CLI (scripts/bench uses it)."""

from __future__ import annotations

from terminal.bench.cli import bench_command

if __name__ == "__main__":
    bench_command(prog_name="scripts/bench")
