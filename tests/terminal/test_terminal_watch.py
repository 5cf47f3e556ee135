"""Reader / card events over pcscd + vpcd, and surviving a pcscd restart."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from private_pcscd import PrivatePcscd
from terminal_cards import card_os

from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal.watch import ReaderEvent, ReaderWatcher

ROOT = Path(__file__).resolve().parents[2]


def _next(events: queue.Queue[Any], match: Callable[[Any], bool], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"event not seen; got {seen}")
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            continue
        seen.append(event)
        if match(event):
            return event


def test_watcher_reports_cards_coming_and_going(pcsc_stack: PcscStack) -> None:
    reader = pcsc_stack.reader_for_slot(7)
    events: queue.Queue[ReaderEvent] = queue.Queue()
    watcher = ReaderWatcher(poll_ms=200)
    thread = watcher.start(events.put)
    try:
        added = _next(events, lambda e: e.kind == "reader_added" and e.reader == reader)
        assert added.reader_kind == "unknown" and watcher.available is True
        with VpcdLink(card_os(3), 7):
            inserted = _next(events, lambda e: e.kind == "card_inserted" and e.reader == reader)
            assert inserted.reader_kind == "contact" and inserted.atr == card_os(3).atr()
            assert inserted.to_dict()["message"] == "已插卡"
            assert any(r.name == reader and r.card_present for r in watcher.readers())
        removed = _next(events, lambda e: e.kind == "card_removed" and e.reader == reader)
        assert removed.to_dict()["event"] == "card_removed"
    finally:
        watcher.stop()
    assert not thread.is_alive() and watcher.stopped


def test_watcher_survives_a_pcscd_restart(tmp_path: Path) -> None:
    """pcscd stops and comes back with one vpcd entry less: the watcher keeps
    running, says PC/SC is down, then reports the card gone and the readers of
    the missing entry unplugged.  A card session of the same process fails
    with a clear error while pcscd is down, and a new one works after."""
    daemon = PrivatePcscd(tmp_path)
    daemon.start(second_entry=True)
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(daemon.socket_path), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("terminal_watch_child.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    assert child.stdout is not None

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    link = VpcdLink(card_os(3), daemon.slot)
    try:
        _next(lines, lambda e: e["event"] == "reader_added" and e["reader"] == daemon.reader)
        _next(lines, lambda e: e["event"] == "reader_added" and e["reader"] == daemon.second_reader)
        link.insert()
        event = _next(lines, lambda e: e["event"] == "card_inserted" and e["reader"] == daemon.reader)
        assert event["reader_kind"] == "contact"
        assert child.stdin is not None
        child.stdin.write(f"open {daemon.reader}\n")
        child.stdin.flush()
        assert _next(lines, lambda e: e["event"] == "session")["card_number"] == "X00000019"
        daemon.stop()
        down = _next(lines, lambda e: e["event"] == "pcsc_unavailable")
        assert down["message"] == "智能卡服务（PC/SC）不可用，正在等待服务恢复"
        child.stdin.write("read\n")
        child.stdin.flush()
        failed = _next(lines, lambda e: e["event"] == "session")
        assert failed["error"] == "pcsc_unavailable" and failed["national_code"] == -11
        assert child.poll() is None
        daemon.start()  # without the second entry: its readers were unplugged meanwhile
        _next(lines, lambda e: e["event"] == "pcsc_available")
        wanted = {("card_removed", daemon.reader), ("reader_removed", daemon.second_reader)}
        seen = []
        while not wanted <= {(e["event"], e["reader"]) for e in seen}:  # in either order
            seen.append(_next(lines, lambda e: (e["event"], e["reader"]) in wanted))
        assert next(e for e in seen if e["event"] == "reader_removed")["message"] == "读卡器已断开"
        link.remove()
        link.insert()
        _next(lines, lambda e: e["event"] == "card_inserted" and e["reader"] == daemon.reader)
        child.stdin.write(f"open {daemon.reader}\n")  # the same process, a new PC/SC context
        child.stdin.flush()
        assert _next(lines, lambda e: e["event"] == "session")["card_number"] == "X00000019"
    finally:
        link.remove()
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
            raise
        finally:
            daemon.stop()
    assert child.returncode == 0
    _next(lines, lambda e: e["event"] == "stopped", timeout=2)
    assert child.stderr is not None and "Traceback" not in child.stderr.read()


def test_watcher_starting_while_pcscd_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripted PC/SC answers: down at start, then one reader whose card arrives."""
    from apdu import pcsc
    from apdu.errors import PcscUnavailableError, TransportError

    atr = card_os(3).atr()
    present = pcsc.ReaderState("R 00", 0x20 | 0x02, atr)  # SCARD_STATE_PRESENT | CHANGED
    empty = pcsc.ReaderState("R 00", 0x10, None)  # SCARD_STATE_EMPTY
    script: list[object] = [PcscUnavailableError("down"), PcscUnavailableError("down"), ["R 00"]]
    changes: list[object] = [None, TransportError("glitch"), pcsc.StatusChange([present], False, 0)]
    watcher = ReaderWatcher(poll_ms=10, retry_interval=0.01)

    def list_readers() -> list[str]:
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, Exception):
            raise step
        return step  # type: ignore[return-value]

    def wait_for_change(states: object, timeout_ms: int, *, pnp_state: int = 0) -> object:
        if not changes:
            watcher.stop()
            return None
        step = changes.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    monkeypatch.setattr(pcsc, "list_readers", list_readers)
    monkeypatch.setattr(pcsc, "reader_states", lambda names: [empty])
    monkeypatch.setattr(pcsc, "wait_for_change", wait_for_change)
    monkeypatch.setattr(pcsc, "cancel", lambda: None)
    kinds = [(e.kind, e.reader) for e in watcher.events()]
    assert kinds == [
        ("pcsc_unavailable", None),
        ("pcsc_available", None),
        ("reader_added", "R 00"),
        ("card_inserted", "R 00"),
    ]
    assert watcher.available is True and watcher.readers()[0].kind == "contact"


class _CallCounter:
    """Counts the watcher's SCardGetStatusChange calls (its own threads only) by answer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from apdu import pcsc

        scard = pcsc.scard  # pyscard is imported by apdu/pcsc.py alone
        self.answers: list[int] = []
        self.lists = 0
        self.fine = {scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT & 0xFFFFFFFF}
        self.fine.add(scard.SCARD_E_CANCELLED & 0xFFFFFFFF)
        real_wait, real_list = scard.SCardGetStatusChange, scard.SCardListReaders
        lock = threading.Lock()

        def ours() -> bool:
            return threading.current_thread().name.startswith(("sscard-watch", "sscard-pcsc-wait"))

        def wait(ctx: int, timeout: int, states: list[Any]) -> Any:
            result = real_wait(ctx, timeout, states)
            if ours():
                with lock:
                    self.answers.append(result[0] & 0xFFFFFFFF)
            return result

        def list_readers(ctx: int, groups: list[str]) -> Any:
            if ours():
                with lock:
                    self.lists += 1
            return real_list(ctx, groups)

        monkeypatch.setattr(scard, "SCardGetStatusChange", wait)
        monkeypatch.setattr(scard, "SCardListReaders", list_readers)

    def unexpected(self) -> list[str]:
        return [f"{code:08X}" for code in self.answers if code not in self.fine]


def _event(kind: str, reader: str) -> Callable[[ReaderEvent], bool]:
    return lambda e: e.kind == kind and e.reader == reader


@pytest.mark.parametrize("per_call", [16, 3], ids=["pcsc-lite-limit", "many-groups"])
def test_watcher_waits_on_all_sixteen_readers_without_polling(
    pcsc_stack: PcscStack, monkeypatch: pytest.MonkeyPatch, per_call: int
) -> None:
    """16 readers + PnP exceed one SCardGetStatusChange (16 states at most):
    the watcher waits on groups of readers and still hears card events on
    every reader at once, without re-reading the readers in a loop.  The
    poll interval is a minute, so each event seen came through the wait;
    ``per_call`` 3 puts the area's readers into groups without PnP."""
    from apdu import pcsc

    monkeypatch.setattr(pcsc, "MAX_STATES_PER_CALL", per_call)
    readers = pcsc.list_readers()
    assert len(readers) + 1 > 16  # the case pcsc-lite refused: 16 readers + PnP
    groups = len(pcsc._groups([(name, 0) for name in readers] + [(pcsc.PNP_NOTIFICATION, 0)]))
    counter = _CallCounter(monkeypatch)
    events: queue.Queue[ReaderEvent] = queue.Queue()
    watcher = ReaderWatcher(poll_ms=60_000)
    thread = watcher.start(events.put)
    try:
        for slot in (4, 7):
            _next(events, _event("reader_added", pcsc_stack.reader_for_slot(slot)))
        for slot in (4, 7):
            reader = pcsc_stack.reader_for_slot(slot)
            with VpcdLink(card_os(3), slot):
                _next(events, _event("card_inserted", reader))
            _next(events, _event("card_removed", reader))
        busy = len(counter.answers)
        idle_from = len(counter.answers)
        time.sleep(0.5)  # idle: the watcher blocks and calls nothing
        idle = len(counter.answers) - idle_from
    finally:
        watcher.stop()
    assert not thread.is_alive() and watcher.stopped
    assert counter.unexpected() == []  # never SCARD_E_INVALID_PARAMETER
    assert counter.lists <= 2  # the readers were listed at start, not re-read in a loop
    assert idle <= 2 * groups  # at most a late round or two of the last removal
    assert busy <= groups * 40  # a few rounds per event, not a spin
