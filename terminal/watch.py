"""Reader and card arrival / removal events, surviving a pcscd restart.

:class:`ReaderWatcher` blocks in SCardGetStatusChange (``apdu.pcsc.wait_for_change``,
which also watches ``\\\\?PnP?\\Notification`` for readers coming and going)
and turns the state changes into :class:`ReaderEvent` objects:

==================== ===========================================================
kind                 when
==================== ===========================================================
``reader_added``     a reader appeared (and, with ``initial``, each reader at start)
``reader_removed``   a reader was unplugged / disappeared
``card_inserted``    a card is present (ATR and reader kind given)
``card_removed``     the card left the reader
``pcsc_unavailable`` pcscd stopped or cannot be reached (``message_zh`` says so)
``pcsc_available``   pcscd is back; the watcher rebuilt its context and re-read
                     the readers (their differences follow as events)
==================== ===========================================================

pcscd going away never ends the watcher: it reports ``pcsc_unavailable``
once, polls every ``retry_interval`` seconds, and carries on when the
service is back.  Use it as an iterator (``for event in watcher.events()``),
with a callback (``watcher.run(callback)`` blocking, ``watcher.start(callback)``
in a background thread) and end it with :meth:`ReaderWatcher.stop` from any
thread.  One process should run one watcher: PC/SC waits in a process share
one monitoring context, and ``stop`` cancels it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from apdu import pcsc
from apdu.errors import PcscUnavailableError, SscardError
from terminal.readers import ReaderInfo, ReaderKind, describe_states

__all__ = ["EventKind", "ReaderEvent", "ReaderWatcher"]

log = logging.getLogger("sscard.watch")

EventKind = Literal[
    "reader_added", "reader_removed", "card_inserted", "card_removed", "pcsc_unavailable", "pcsc_available"
]

_MESSAGES: dict[str, tuple[str, str]] = {
    "reader_added": ("reader connected", "读卡器已连接"),
    "reader_removed": ("reader disconnected", "读卡器已断开"),
    "card_inserted": ("card inserted", "已插卡"),
    "card_removed": ("card removed", "卡片已拔出"),
    "pcsc_unavailable": (
        "the PC/SC service (pcscd) is not available; waiting for it",
        "智能卡服务（PC/SC）不可用，正在等待服务恢复",
    ),
    "pcsc_available": ("the PC/SC service is available again", "智能卡服务（PC/SC）已恢复"),
}


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """One change; ``reader`` / ``reader_kind`` / ``atr`` are None for the PC/SC events."""

    kind: EventKind
    reader: str | None = None
    reader_kind: ReaderKind | None = None
    atr: bytes | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def message(self) -> str:
        return _MESSAGES[self.kind][0]

    @property
    def message_zh(self) -> str:
        return _MESSAGES[self.kind][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "reader": self.reader,
            "reader_kind": self.reader_kind,
            "atr": self.atr.hex().upper() if self.atr else None,
            "at": self.at.isoformat(),
            "message": self.message_zh,
        }


class ReaderWatcher:
    """Watches every PC/SC reader; see the module docstring."""

    def __init__(self, *, poll_ms: int = 500, retry_interval: float = 1.0, initial: bool = True) -> None:
        self.poll_ms = poll_ms
        self.retry_interval = retry_interval
        self.initial = initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[str, ReaderInfo] = {}
        self._available: bool | None = None

    # -- public -------------------------------------------------------------------

    @property
    def available(self) -> bool | None:
        """True while pcscd answers, False while it is down, None before the first look."""
        return self._available

    def readers(self) -> list[ReaderInfo]:
        """The readers as last seen by the watcher."""
        return list(self._known.values())

    def stop(self) -> None:
        """End :meth:`events` / :meth:`run` (from any thread) and join a started thread."""
        self._stop.set()
        try:
            pcsc.cancel()
        except SscardError as exc:
            log.debug("SCardCancel: %s", exc.error_id)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, callback: Callable[[ReaderEvent], None]) -> None:
        """Call ``callback`` for every event until :meth:`stop` (blocking)."""
        for event in self.events():
            callback(event)

    def start(self, callback: Callable[[ReaderEvent], None]) -> threading.Thread:
        """Run :meth:`run` in a daemon thread; :meth:`stop` ends and joins it."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the reader watcher is already running")
        self._stop.clear()
        thread = threading.Thread(target=self._run_logged, args=(callback,), name="sscard-watch", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def _run_logged(self, callback: Callable[[ReaderEvent], None]) -> None:
        try:
            self.run(callback)
        except Exception:
            log.exception("reader watcher callback failed; the watcher stopped")
            raise

    def events(self) -> Iterator[ReaderEvent]:
        """Events as they happen, until :meth:`stop`."""
        first = True
        states: list[pcsc.ReaderState] | None = None
        pnp_state = 0
        while not self._stop.is_set():
            try:
                if states is None:
                    states = self._snapshot()
                    yield from self._after_snapshot(states, announce=not first or self.initial)
                    first = False
                    continue
                change = pcsc.wait_for_change(states, self.poll_ms, pnp_state=pnp_state)
                if change is None:
                    continue
                pnp_state = change.pnp_state
                if change.readers_changed or any(s.unavailable for s in change.states):
                    states = None
                    continue
                states = change.states
                yield from self._diff(describe_states(states))
            except PcscUnavailableError:
                states = None
                pnp_state = 0
                if self._available is not False:
                    self._available = False
                    log.warning("PC/SC service unavailable; waiting for it")
                    yield ReaderEvent("pcsc_unavailable")
                first = False
                self._stop.wait(self.retry_interval)
            except SscardError as exc:
                log.info("reader watcher: %s; re-reading the readers", exc.error_id)
                states = None
                self._stop.wait(min(self.retry_interval, 0.2))

    # -- internals -------------------------------------------------------------------

    def _snapshot(self) -> list[pcsc.ReaderState]:
        names = pcsc.list_readers()
        return pcsc.reader_states(names) if names else []

    def _after_snapshot(self, states: list[pcsc.ReaderState], *, announce: bool) -> Iterator[ReaderEvent]:
        if self._available is False:
            log.warning("PC/SC service available again")
            yield ReaderEvent("pcsc_available")
        self._available = True
        infos = describe_states(states)
        if announce:
            yield from self._diff(infos)
        else:
            self._known = {info.name: info for info in infos}

    def _diff(self, infos: list[ReaderInfo]) -> Iterator[ReaderEvent]:
        current = {info.name: info for info in infos}
        previous = self._known
        for name, old in previous.items():
            if name not in current:
                if old.card_present:
                    yield ReaderEvent("card_removed", name, old.kind, None)
                yield ReaderEvent("reader_removed", name, old.kind, None)
        for name, info in current.items():
            old_info = previous.get(name)
            if old_info is None:
                yield ReaderEvent("reader_added", name, info.kind, None)
                if info.card_present:
                    yield ReaderEvent("card_inserted", name, info.kind, info.atr)
                continue
            if old_info.card_present and (not info.card_present or old_info.atr != info.atr):
                yield ReaderEvent("card_removed", name, old_info.kind, None)
                if info.card_present:
                    yield ReaderEvent("card_inserted", name, info.kind, info.atr)
            elif info.card_present and not old_info.card_present:
                yield ReaderEvent("card_inserted", name, info.kind, info.atr)
        self._known = current
