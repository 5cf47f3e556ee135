"""The soak's memory study (docs/reliability.md "Soak"): what grows in the
service process over many flows.

Not a test (no ``test_`` prefix, not in CI): a driver run by hand inside
``scripts/isolated``::

    scripts/isolated .venv/bin/python tests/reliability/soak_memory.py \\
        --rounds 1000,2000,4000 --out /tmp/soak-memory

It starts the soak rig (rel_rig: private pcscd, PSAM, four cards, the
service journaling to its SQLite registry) with the service under
``tracemalloc`` (rel_memtrace.py), runs the soak's mix (rel_soak.run_soak)
once per round and, after each round, has the service dump a snapshot
(tracing starts after the first round, the warm-up).
Then it prints, for each pair of consecutive snapshots, the growth per flow
of VmRSS, of VmRSS after ``malloc_trim(0)``, of the bytes traced by
``tracemalloc`` and of the live objects by type, and the allocation sites
(grouped by traceback) that grew the most; ``--json`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for entry in (HERE.parents[1], HERE.parent, HERE):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from rel_rig import Rig  # noqa: E402
from rel_soak import insert_cards, run_soak  # noqa: E402

MEMTRACE = HERE / "rel_memtrace.py"
WAIT_SECONDS = 300.0


def ask(directory: Path, name: str) -> None:
    """Ask the service's watcher for ``name`` (start, or a snapshot) and wait for it."""
    (directory / f"{name}.request").write_text("", encoding="ascii")
    deadline = time.monotonic() + WAIT_SECONDS
    while not (directory / f"{name}.done").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {name} from the service")
        time.sleep(0.2)


def snapshot(directory: Path, name: str) -> dict[str, Any]:
    """Ask the service for a snapshot and wait for it."""
    ask(directory, name)
    figures: dict[str, Any] = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
    return figures


def _site(stat: tracemalloc.StatisticDiff, root: str) -> list[str]:
    frames = [f"{f.filename.removeprefix(root)}:{f.lineno}" for f in stat.traceback]
    return frames[:6]


def kib(figures: dict[str, Any], key: str) -> int | None:
    value = figures.get(key)
    return None if value is None else int(value) // 1024


def compare(directory: Path, old: str, new: str, flows: int, top: int) -> dict[str, Any]:
    before = json.loads((directory / f"{old}.json").read_text(encoding="utf-8"))
    after = json.loads((directory / f"{new}.json").read_text(encoding="utf-8"))
    root = str(HERE.parents[1]) + "/"
    sites: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    traced = (directory / f"{old}.snap").exists() and (directory / f"{new}.snap").exists()
    snap_old = tracemalloc.Snapshot.load(str(directory / f"{old}.snap")) if traced else None
    snap_new = tracemalloc.Snapshot.load(str(directory / f"{new}.snap")) if traced else None
    for stat in snap_new.compare_to(snap_old, "traceback")[:top] if snap_new and snap_old else []:
        sites.append(
            {
                "size_diff": stat.size_diff,
                "count_diff": stat.count_diff,
                "size": stat.size,
                "count": stat.count,
                "traceback": _site(stat, root),
            }
        )
    if snap_new and snap_old:
        lines = [
            {
                "size_diff": s.size_diff,
                "count_diff": s.count_diff,
                "where": str(s.traceback[0]).removeprefix(root),
            }
            for s in snap_new.compare_to(snap_old, "lineno")[:top]
        ]
    types = {
        name: after["types"].get(name, 0) - before["types"].get(name, 0)
        for name in set(before["types"]) | set(after["types"])
    }
    grown_types = dict(sorted(((k, v) for k, v in types.items() if v), key=lambda kv: -abs(kv[1]))[:top])

    def per_flow(key: str) -> float | None:
        if before.get(key) is None or after.get(key) is None:
            return None
        return round((float(after[key]) - float(before[key])) / flows, 3)

    return {
        "from": old,
        "to": new,
        "flows": flows,
        "rss_kib": [before["rss_kib"], after["rss_kib"]],
        "rss_after_trim_kib": [before["rss_after_trim_kib"], after["rss_after_trim_kib"]],
        "traced_bytes": [before["traced_bytes"], after["traced_bytes"]],
        "rss_kib_per_flow": per_flow("rss_kib"),
        "rss_after_trim_kib_per_flow": per_flow("rss_after_trim_kib"),
        "traced_bytes_per_flow": per_flow("traced_bytes"),
        "blocks_per_flow": per_flow("allocated_blocks"),
        "gc_objects_per_flow": per_flow("gc_objects"),
        "mappings": [before["mappings"], after["mappings"]],
        "malloc_arenas": [before.get("malloc_arenas"), after.get("malloc_arenas")],
        "malloc_system_kib": [kib(before, "malloc_system_bytes"), kib(after, "malloc_system_bytes")],
        "malloc_free_kib": [kib(before, "malloc_free_bytes"), kib(after, "malloc_free_bytes")],
        "sqlite_memory_used": [before.get("sqlite_memory_used"), after.get("sqlite_memory_used")],
        "threads": [before["threads"], after["threads"]],
        "types": grown_types,
        "top_sites": sites,
        "top_lines": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="1000,2000,4000", help="flows per round, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="snapshot directory (default: temporary)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None, help="write the comparisons here")
    parser.add_argument("--journal", default="registry", help="the service's journal (registry, none)")
    parser.add_argument("--no-trace", action="store_true", help="never start tracemalloc (RSS only)")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the service (e.g. MALLOC_ARENA_MAX=2)"
    )
    args = parser.parse_args()
    rounds = [int(n) for n in args.rounds.split(",")]
    with tempfile.TemporaryDirectory(prefix="soak-memory-") as tmp_name:
        tmp = Path(tmp_name)
        directory = args.out or tmp / "snapshots"
        directory.mkdir(parents=True, exist_ok=True)
        rig = Rig(
            tmp / "rig",
            journal=args.journal,
            extra={"service": {"log_level": "WARNING"}},
            env={"SSCARD_MEMTRACE_DIR": str(directory), **dict(e.split("=", 1) for e in args.env)},
            launcher=(str(MEMTRACE),),
        )
        comparisons = []
        try:
            cards = insert_cards(rig)
            names: list[str] = []
            for index, flows in enumerate(rounds):
                started = time.monotonic()
                report = run_soak(rig, cards, flows, seed=11 + index, warmup=100 if index == 0 else 0)
                if index == 0 and not args.no_trace:
                    ask(directory, "start")
                name = f"r{index}"
                figures = snapshot(directory, name)
                print(
                    f"round {index}: {flows} flows in {time.monotonic() - started:.0f} s, "
                    f"unexpected {len(report.unexpected)}, rss {figures['rss_kib']} KiB "
                    f"(after trim {figures['rss_after_trim_kib']}), traced {figures['traced_bytes']} B, "
                    f"sqlite {figures['sqlite_memory_used']} B",
                    flush=True,
                )
                if names:
                    comparisons.append(compare(directory, names[-1], name, flows, args.top))
                    print(json.dumps(comparisons[-1], indent=1, ensure_ascii=False), flush=True)
                names.append(name)
        finally:
            rig.close()
        if args.json is not None:
            args.json.write_text(json.dumps(comparisons, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
