"""The service process under ``tracemalloc``, for the soak's memory study
(docs/reliability.md "Soak"; driver: ``soak_memory.py``).

``python tests/reliability/rel_memtrace.py --config FILE`` runs
``python -m terminal.service --config FILE`` with a watcher thread on the
directory ``SSCARD_MEMTRACE_DIR``.  ``tracemalloc`` starts when the file
``start.request`` appears there (``SSCARD_MEMTRACE_FRAMES`` frames per
traceback, default 12): tracing the imports and the start-up would take a
minute, and only what grows after the warm-up matters.  When a file
``NAME.request`` appears, the watcher collects garbage, dumps a snapshot to ``NAME.snap`` and writes
``NAME.json`` (VmRSS before and after ``malloc_trim(0)``, traced bytes,
allocated blocks, live objects by type), then renames the request to
``NAME.done``.  Nothing is added to the product service: the trigger is a
file of the test's own temporary directory.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

POLL_SECONDS = 0.2


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _malloc_trim() -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def _sqlite_memory() -> tuple[int, int] | None:
    """SQLite's own heap (sqlite3_memory_used, its high-water mark), not seen by tracemalloc."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    return int(lib.sqlite3_memory_used()), int(lib.sqlite3_memory_highwater(0))


def _malloc_arenas(path: Path) -> list[dict[str, int]]:
    """glibc's ``malloc_info`` per arena: the memory it holds from the system and
    the free bytes in it (fragments the allocator keeps)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return []
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    stream = libc.fopen(str(path).encode(), b"w")
    if not stream:
        return []
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    root = ElementTree.fromstring(path.read_text(encoding="ascii"))
    arenas = []
    for heap in root.findall("heap"):
        system = heap.find("system[@type='current']")
        free = sum(int(t.get("size", "0")) for t in heap.findall("total"))
        arenas.append({"system": int(system.get("size", "0")) if system is not None else 0, "free": free})
    return arenas


def measure(directory: Path, name: str) -> dict[str, Any]:
    """Collect, dump the snapshot ``name.snap`` (when tracing) and return the figures."""
    gc.collect()
    rss = vm_rss_kib()
    sqlite = _sqlite_memory()
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
        )
        snapshot.dump(str(directory / f"{name}.snap"))
    current, peak = tracemalloc.get_traced_memory()
    mappings = len(Path("/proc/self/maps").read_text().splitlines())
    types = Counter(type(o).__qualname__ for o in gc.get_objects())
    arenas = _malloc_arenas(directory / f"{name}.malloc.xml")
    trimmed = _malloc_trim()
    return {
        "rss_kib": rss,
        "rss_after_trim_kib": vm_rss_kib() if trimmed else None,
        "traced_bytes": current,
        "traced_peak_bytes": peak,
        "allocated_blocks": sys.getallocatedblocks(),
        "gc_objects": sum(types.values()),
        "types": dict(types.most_common(60)),
        "threads": threading.active_count(),
        "mappings": mappings,
        "malloc_arenas": len(arenas),
        "malloc_system_bytes": sum(a["system"] for a in arenas),
        "malloc_free_bytes": sum(a["free"] for a in arenas),
        "sqlite_memory_used": sqlite[0] if sqlite else None,
        "sqlite_memory_highwater": sqlite[1] if sqlite else None,
        "tracemalloc_overhead_bytes": tracemalloc.get_tracemalloc_memory(),
    }


def _watch(directory: Path) -> None:
    while True:
        for request in sorted(directory.glob("*.request")):
            name = request.stem
            if name == "start":
                tracemalloc.start(int(os.environ.get("SSCARD_MEMTRACE_FRAMES", "12")))
                request.rename(directory / "start.done")
                continue
            figures = measure(directory, name)
            (directory / f"{name}.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
            request.rename(directory / f"{name}.done")
        time.sleep(POLL_SECONDS)


def main() -> None:
    directory = Path(os.environ["SSCARD_MEMTRACE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_watch, args=(directory,), name="memtrace", daemon=True).start()
    from terminal.service.cli import main as service_main

    sys.argv = ["terminal.service", *sys.argv[1:]]
    service_main()


if __name__ == "__main__":
    main()
