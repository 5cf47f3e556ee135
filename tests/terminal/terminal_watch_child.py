"""Run a ReaderWatcher and print its events as JSON lines until stdin closes.

Started by test_terminal_watch.py with PCSCLITE_CSOCK_NAME pointing at a
private pcscd (the PC/SC client library reads it once per process).
"""

from __future__ import annotations

import json
import sys
import threading

from terminal.watch import ReaderWatcher


def main() -> int:
    watcher = ReaderWatcher(poll_ms=200, retry_interval=0.2)

    def stop_on_eof() -> None:
        sys.stdin.read()
        watcher.stop()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    for event in watcher.events():
        print(json.dumps(event.to_dict(), ensure_ascii=False), flush=True)
    print(json.dumps({"event": "stopped"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
