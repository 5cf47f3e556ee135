"""PC/SC transport and reader monitoring over pyscard's low-level API.

This is the only module of the project that imports pyscard (``smartcard``);
pyscard is pinned ``>=2.2,<2.4`` in pyproject.toml.  PC/SC return codes are
mapped to project exceptions by ``apdu/data/pcsc_errors.toml``.

- :class:`PcscTransport` implements :class:`apdu.transport.Transport`:
  SCardConnect (shared, T=0 or T=1 as the reader negotiates), SCardTransmit
  with the PCI of the active protocol, SCardBeginTransaction /
  SCardEndTransaction for exclusive access, SCardReconnect, SCardStatus and
  SCardDisconnect (resetting the card by default so that a verified PIN or an
  authentication does not outlive the session; ``dispose="reset_if_changed"``
  resets only when a command other than the reading ones of
  ``data/commands.toml`` ``[leaves_state]`` was sent); :meth:`PcscTransport.control`
  (SCardControl) and :meth:`PcscTransport.features` (PC/SC part 10 feature
  discovery, e.g. a PIN pad's ``FEATURE_VERIFY_PIN_DIRECT``).
- :func:`list_readers`, :func:`reader_states`, :func:`wait_for_change` and
  :func:`cancel` use a shared monitoring context that is re-established
  after ``SCARD_E_NO_SERVICE`` / ``SCARD_E_SERVICE_STOPPED``.
- A transport's own context (a socket to pcscd) comes from a small pool:
  SCardEstablishContext + SCardReleaseContext cost ≈ 0.4 ms, a third of a
  read-only card session, so a process that opens session after session (the
  local service, a kiosk) keeps a few idle contexts; a context that met a
  service error is released, never pooled (docs/apdu.md, "PC/SC contexts").
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Self, TypeVar

from smartcard import scard

from apdu import errors
from apdu._tables import command_in_table, load_table
from apdu.errors import (
    NoCardError,
    PcscUnavailableError,
    SscardError,
    TransportError,
)
from apdu.transport import ProtocolName

__all__ = [
    "CM_IOCTL_GET_FEATURE_REQUEST",
    "PNP_NOTIFICATION",
    "PcscTransport",
    "ReaderState",
    "StatusChange",
    "cancel",
    "control_code",
    "error_for_pcsc",
    "list_readers",
    "parse_features",
    "reader_states",
    "wait_for_change",
]

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
INFINITE = 0xFFFFFFFF
Disposition = Literal["leave", "reset", "unpower", "reset_if_changed"]

_DISPOSITIONS: dict[str, int] = {
    "leave": scard.SCARD_LEAVE_CARD,
    "reset": scard.SCARD_RESET_CARD,
    "unpower": scard.SCARD_UNPOWER_CARD,
    "reset_if_changed": scard.SCARD_RESET_CARD,
}

T = TypeVar("T")

# PC/SC part 10: the reader lists its features (tag, 4-byte control code)
# in answer to SCardControl(SCARD_CTL_CODE(3400)).
CM_IOCTL_GET_FEATURE_REQUEST = 3400


def _u32(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


@cache
def _error_table() -> dict[int, tuple[str, dict[str, Any]]]:
    table: dict[str, dict[str, Any]] = load_table("pcsc_errors")["errors"]
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for name, row in table.items():
        code = getattr(scard, name, None)
        if code is not None:
            out[_u32(code)] = (name, row)
    return out


def _is_service_error(hresult: int) -> bool:
    entry = _error_table().get(_u32(hresult))
    return bool(entry and entry[1].get("service"))


def error_for_pcsc(hresult: int, what: str, *, session: bool = False) -> SscardError:
    """The project exception for a PC/SC return code (``what``: the operation
    and reader, for the message)."""
    code = _u32(hresult)
    entry = _error_table().get(code)
    try:
        text = scard.SCardGetErrorMessage(hresult)
    except Exception:  # pyscard may not know the code; the hex is enough
        text = ""
    message = f"{what}: PC/SC {code:08X}" + (f" ({text})" if text else "")
    if entry is None:
        return TransportError(message)
    name, row = entry
    class_name = row.get("session", row["class"]) if session else row["class"]
    klass = getattr(errors, class_name)
    message = f"{what}: {name}" + (f" ({text})" if text else "")
    exc: SscardError = klass(message)
    return exc


def control_code(function: int) -> int:
    """``SCARD_CTL_CODE(function)`` of the platform (pcsc-lite: 0x42000000 + function)."""
    return int(scard.SCARD_CTL_CODE(function))


def parse_features(data: bytes) -> dict[int, int]:
    """The part 10 feature list ``tag | 04 | control code (big endian)`` as
    ``{tag: control code}``; a malformed list raises ProtocolError."""
    out: dict[int, int] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise errors.ProtocolError("PC/SC feature list: truncated TLV header")
        tag, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if length != 4 or len(value) != 4:
            raise errors.ProtocolError(f"PC/SC feature list: tag {tag:02X} has length {length}, 4 expected")
        out[tag] = int.from_bytes(value, "big")
        i += 2 + length
    return out


# -- shared monitoring context -----------------------------------------------------


class _Context:
    """A PC/SC context, re-established after the service went away."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._handle: int | None = None

    def get(self) -> int:
        with self._lock:
            if self._handle is None:
                hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise PcscUnavailableError(
                        f"SCardEstablishContext: PC/SC {_u32(hresult):08X} (is pcscd running?)"
                    )
                self._handle = int(handle)
            return self._handle

    @property
    def established(self) -> bool:
        return self._handle is not None

    def invalidate(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            # The service may be gone already; a failed release is harmless.
            with contextlib.suppress(Exception):
                scard.SCardReleaseContext(handle)

    def call(self, fn: Callable[[int], tuple[int, T]], what: str) -> tuple[int, T]:
        """Run ``fn(context)``; on a service error re-establish once and retry."""
        for attempt in (1, 2):
            hresult, value = fn(self.get())
            if _is_service_error(hresult) or _u32(hresult) == _u32(scard.SCARD_E_INVALID_HANDLE):
                self.invalidate()
                if attempt == 1:
                    continue
                raise PcscUnavailableError(f"{what}: the PC/SC service is not available")
            return hresult, value
        raise PcscUnavailableError(f"{what}: the PC/SC service is not available")


# pcsc-lite holds a context's lock for the whole of a blocking
# SCardGetStatusChange, so waiting for events uses its own context; short
# queries (list_readers, reader_states) use another and never block behind it.
_monitor = _Context()
_query = _Context()


class _ContextPool:
    """Idle established contexts for transports; at most ``keep`` of them."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._idle: list[_Context] = []

    def take(self) -> _Context:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Context()

    def give(self, context: _Context) -> None:
        """Keep ``context`` for the next transport, or release it."""
        with self._lock:
            if context.established and len(self._idle) < self.keep:
                self._idle.append(context)
                return
        context.invalidate()

    @property
    def idle(self) -> int:
        return len(self._idle)

    def clear(self) -> None:
        """Release every idle context."""
        with self._lock:
            idle, self._idle = self._idle, []
        for context in idle:
            context.invalidate()

    def forget(self) -> None:
        """Drop the idle contexts without releasing them (a forked child:
        the sockets belong to the parent's connection to pcscd)."""
        self._idle = []
        self._lock = threading.Lock()


# A counter has a handful of readers (cards and PSAMs): keep that many contexts.
_CONTEXT_POOL_SIZE = 8
_pool = _ContextPool(_CONTEXT_POOL_SIZE)
os.register_at_fork(after_in_child=lambda: _pool.forget())

# pcsc-lite's SCardGetStatusChange takes at most PCSCLITE_MAX_READERS_CONTEXTS
# (16) states and answers SCARD_E_INVALID_PARAMETER to more (winscard_clnt.c).
# With 16 readers plus ``\\?PnP?\Notification`` the waits are split into
# groups of at most this many states, each blocking on its own context.
MAX_STATES_PER_CALL = 16
# Extra monitoring contexts for the groups after the first (which uses _monitor).
_group_monitors: list[_Context] = []
_group_lock = threading.Lock()
# The finish events of the grouped waits in progress, set by cancel().
_active_waits: set[threading.Event] = set()
# How often a grouped wait repeats SCardCancel on a group that has not returned
# yet (a cancel sent before the call started waiting is lost in pcsc-lite).
_CANCEL_REPEAT_S = 0.02


def list_readers() -> list[str]:
    """Reader names; an empty list when none is attached.  Raises
    :class:`PcscUnavailableError` when pcscd is not running."""

    def run(ctx: int) -> tuple[int, list[str]]:
        hresult, readers = scard.SCardListReaders(ctx, [])
        return hresult, list(readers or [])

    hresult, readers = _query.call(run, "SCardListReaders")
    if _u32(hresult) == _u32(scard.SCARD_E_NO_READERS_AVAILABLE):
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        raise error_for_pcsc(hresult, "SCardListReaders")
    return readers


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One reader's state from SCardGetStatusChange (``event_state`` raw)."""

    name: str
    event_state: int
    atr: bytes | None

    @property
    def present(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_PRESENT)

    @property
    def empty(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_EMPTY)

    @property
    def mute(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_MUTE)

    @property
    def unpowered(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_UNPOWERED)

    @property
    def exclusive(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_EXCLUSIVE)

    @property
    def in_use(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_INUSE)

    @property
    def unavailable(self) -> bool:
        return bool(self.event_state & (scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_UNKNOWN))

    @property
    def changed(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_CHANGED)

    @property
    def known_state(self) -> int:
        """The value to pass back as the current state (CHANGED cleared)."""
        return int(self.event_state & ~scard.SCARD_STATE_CHANGED)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Result of :func:`wait_for_change`."""

    states: list[ReaderState]
    readers_changed: bool
    pnp_state: int


def _status_change(
    requests: list[tuple[str, int]], timeout_ms: int, context: _Context
) -> tuple[int, list[tuple[str, int, list[int]]]]:
    def run(ctx: int) -> tuple[int, list[tuple[str, int, list[int]]]]:
        hresult, states = scard.SCardGetStatusChange(ctx, timeout_ms, requests)
        return hresult, list(states or [])

    return context.call(run, "SCardGetStatusChange")


def _to_state(item: tuple[str, int, list[int]]) -> ReaderState:
    name, event_state, atr = item
    return ReaderState(name=name, event_state=event_state, atr=bytes(atr) if atr else None)


def reader_states(readers: Sequence[str] | None = None, timeout_ms: int = 0) -> list[ReaderState]:
    """Current state of ``readers`` (all readers when None)."""
    names = list(readers) if readers is not None else list_readers()
    if not names:
        return []
    out: list[ReaderState] = []
    for start in range(0, len(names), MAX_STATES_PER_CALL):
        chunk = names[start : start + MAX_STATES_PER_CALL]
        hresult, states = _status_change([(n, scard.SCARD_STATE_UNAWARE) for n in chunk], timeout_ms, _query)
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for_pcsc(hresult, "SCardGetStatusChange")
        out.extend(_to_state(s) for s in states)
    return out


def wait_for_change(
    known_states: Sequence[ReaderState], timeout_ms: int, *, pnp_state: int = 0
) -> StatusChange | None:
    """Block until a reader in ``known_states`` changes (card inserted or
    removed, reader gone) or a reader is attached/detached (watched through
    ``\\\\?PnP?\\Notification``).  Returns None on timeout or :func:`cancel`.
    Pass the returned ``pnp_state`` back in the next call.

    More states than one SCardGetStatusChange takes (:data:`MAX_STATES_PER_CALL`)
    are watched in groups, each blocking in its own thread and context; the
    first group to return ends the others (SCardCancel), and the readers of
    a group that saw nothing keep their known state."""
    requests = [(s.name, s.known_state) for s in known_states]
    requests.append((PNP_NOTIFICATION, pnp_state))
    timeout = INFINITE if timeout_ms < 0 else timeout_ms
    if len(requests) <= MAX_STATES_PER_CALL:
        answers = [_status_change(requests, timeout, _monitor)]
    else:
        answers = _grouped_status_change(_groups(requests), timeout)
    changed: dict[str, tuple[str, int, list[int]]] = {}
    for hresult, states in answers:
        code = _u32(hresult)
        if code in (_u32(scard.SCARD_E_TIMEOUT), _u32(scard.SCARD_E_CANCELLED)):
            continue
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for_pcsc(hresult, "SCardGetStatusChange")
        changed.update((item[0], item) for item in states)
    if not changed:
        return None
    readers = [
        _to_state(changed[s.name])
        if s.name in changed
        else ReaderState(name=s.name, event_state=s.known_state, atr=s.atr)
        for s in known_states
    ]
    pnp = changed.get(PNP_NOTIFICATION)
    pnp_event = pnp[1] if pnp is not None else pnp_state
    readers_changed = bool(pnp is not None and pnp[1] & scard.SCARD_STATE_CHANGED)
    return StatusChange(
        states=readers,
        readers_changed=readers_changed,
        pnp_state=pnp_event & ~scard.SCARD_STATE_CHANGED,
    )


def _groups(requests: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """The requests in groups of at most MAX_STATES_PER_CALL, PnP in the first."""
    size = max(2, MAX_STATES_PER_CALL)
    pnp = [r for r in requests if r[0] == PNP_NOTIFICATION]
    readers = [r for r in requests if r[0] != PNP_NOTIFICATION]
    first = size - len(pnp)
    groups = [readers[:first] + pnp]
    groups += [readers[i : i + size] for i in range(first, len(readers), size)]
    return groups


def _group_context(index: int) -> _Context:
    if index == 0:
        return _monitor
    with _group_lock:
        while len(_group_monitors) < index:
            _group_monitors.append(_Context())
        return _group_monitors[index - 1]


_Answer = tuple[int, list[tuple[str, int, list[int]]]]


def _grouped_status_change(groups: list[list[tuple[str, int]]], timeout: int) -> list[_Answer]:
    """SCardGetStatusChange on every group at once; returns when one group
    answers (the others are cancelled and their answers kept too)."""
    contexts = [_group_context(i) for i in range(len(groups))]
    answers: list[_Answer | BaseException | None] = [None] * len(groups)
    finished = threading.Event()

    def run(index: int) -> None:
        try:
            answers[index] = _status_change(groups[index], timeout, contexts[index])
        except BaseException as exc:  # handed to the caller below
            answers[index] = exc
        finally:
            finished.set()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"sscard-pcsc-wait-{i}", daemon=True)
        for i in range(len(groups))
    ]
    with _group_lock:
        _active_waits.add(finished)
    try:
        for thread in threads:
            thread.start()
        finished.wait()
        # Wake the groups still blocked; repeat until each has returned, since
        # a cancel that reaches pcscd before the group started waiting is lost.
        while True:
            pending = [i for i, t in enumerate(threads) if t.is_alive()]
            if not pending:
                break
            for i in pending:
                _cancel_context(contexts[i])
            threads[pending[0]].join(_CANCEL_REPEAT_S)
    finally:
        with _group_lock:
            _active_waits.discard(finished)
    out: list[_Answer] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
        if answer is not None:
            out.append(answer)
    return out


def _cancel_context(context: _Context) -> None:
    try:
        ctx = context.get()
    except PcscUnavailableError:
        return
    scard.SCardCancel(ctx)


def cancel() -> None:
    """Wake up a blocked :func:`wait_for_change` (SCardCancel)."""
    with _group_lock:
        waits = list(_active_waits)
        extra = list(_group_monitors)
    for finished in waits:
        finished.set()
    for context in [_monitor, *extra]:
        _cancel_context(context)


# -- transport ------------------------------------------------------------------------


_UNDEFINED_PROTOCOL_TRIES = 3
_UNDEFINED_PROTOCOL_PAUSE = 0.05
_STALE_STATUS_TRIES = 3
_STALE_STATUS_PAUSE = 0.01

_PROTOCOLS: dict[int, ProtocolName] = {
    scard.SCARD_PROTOCOL_T0: "T0",
    scard.SCARD_PROTOCOL_T1: "T1",
}
_PCI: dict[ProtocolName, int] = {"T0": scard.SCARD_PCI_T0, "T1": scard.SCARD_PCI_T1}


def leaves_state(apdu: bytes) -> bool:
    """Whether command ``apdu`` leaves the card's security state as it was
    (``data/commands.toml`` ``[leaves_state]``; logical channel bits ignored)."""
    return len(apdu) >= 4 and command_in_table("leaves_state", apdu[0], apdu[1])


class PcscTransport:
    """A card in one PC/SC reader (shared mode, T=0 or T=1)."""

    def __init__(self, reader_name: str, *, dispose: Disposition = "reset") -> None:
        if dispose not in _DISPOSITIONS:
            raise errors.InvalidInput(f"dispose must be one of {', '.join(_DISPOSITIONS)}", kind="parameter")
        self._reader = reader_name
        self._dispose = _DISPOSITIONS[dispose]
        self._reset_only_if_changed = dispose == "reset_if_changed"
        self._changed = False
        self._context: _Context | None = None
        self._card: int | None = None
        self._protocol: ProtocolName | None = None
        self._atr: bytes | None = None
        self._lock = threading.RLock()
        self._transaction_depth = 0

    # -- properties --------------------------------------------------------

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def connected(self) -> bool:
        return self._card is not None

    @property
    def atr(self) -> bytes:
        if self._atr is None:
            raise NoCardError(f"{self._reader}: not connected")
        return self._atr

    @property
    def protocol(self) -> ProtocolName:
        if self._protocol is None:
            raise NoCardError(f"{self._reader}: not connected")
        return self._protocol

    # -- connection ----------------------------------------------------------

    def connect(self) -> None:
        with self._lock:
            if self._card is not None:
                return
            card: int | None = None
            self._context = _pool.take()
            self._changed = False
            try:
                card, active = self._connect_handle()
                self._card = card
                self._set_protocol(active)
                self._refresh_atr()
            except BaseException:
                # A failed connection keeps nothing: neither the card handle nor the
                # context, each a socket to pcscd (a request on an empty reader must
                # not cost a descriptor: issue 11's soak).
                self._drop()
                if card is not None:
                    with contextlib.suppress(Exception):
                        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
                self._release_context(pool=False)
                raise

    def _connect_handle(self) -> tuple[int, int]:
        """SCardConnect: ``(card handle, active protocol)``."""
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1

        def run(ctx: int) -> tuple[int, tuple[int, int]]:
            hresult, card, active = scard.SCardConnect(ctx, self._reader, scard.SCARD_SHARE_SHARED, protocols)
            return hresult, (card, active)

        assert self._context is not None
        for attempt in range(_UNDEFINED_PROTOCOL_TRIES):
            hresult, (card, active) = self._context.call(run, f"SCardConnect({self._reader})")
            if hresult != scard.SCARD_S_SUCCESS:
                raise error_for_pcsc(hresult, f"SCardConnect({self._reader})")
            if active != scard.SCARD_PROTOCOL_UNDEFINED:
                return card, active
            # A card inserted a moment ago: connected before the reader settled
            # its protocol. Try again.
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            if attempt + 1 < _UNDEFINED_PROTOCOL_TRIES:
                time.sleep(_UNDEFINED_PROTOCOL_PAUSE)
        raise errors.CardUnpoweredError(f"{self._reader}: the card has no transmission protocol yet")

    def _set_protocol(self, active: int) -> None:
        name = _PROTOCOLS.get(active)
        if name is None:
            self._drop()
            raise TransportError(f"{self._reader}: unsupported protocol {active:#x} (only T=0/T=1)")
        self._protocol = name

    def _refresh_atr(self) -> None:
        """Read the ATR (SCardStatus).  The protocol is never taken from here.

        pcsc-lite's client library answers SCardStatus's state, protocol and
        ATR from one process-wide copy of the reader states, refreshed by
        whichever thread of the process talked to pcscd last (winscard_clnt.c
        ``readerStates[]``; pcsc-lite 1.9 guards it with no lock).  With
        sessions on several readers at once another thread's older snapshot
        can show this reader as just reset: protocol 0 (``NEGOTIABLE``) or,
        rarely, no ATR yet.  The protocol SCardConnect / SCardReconnect
        returned comes in pcscd's answer to that very call and is the one to
        use; an empty ATR is read again (bounded)."""
        card = self._require_card()
        for attempt in range(_STALE_STATUS_TRIES):
            hresult, _reader, _state, _active, atr = scard.SCardStatus(card)
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._session_error(hresult, "SCardStatus")
            if atr:
                self._atr = bytes(atr)
                return
            if attempt + 1 < _STALE_STATUS_TRIES:
                time.sleep(_STALE_STATUS_PAUSE)
        raise errors.CardUnpoweredError(f"{self._reader}: the card has no ATR")

    def status(self) -> tuple[int, bytes]:
        """SCardStatus: ``(state bits, ATR)`` of the connected card."""
        with self._lock:
            card = self._require_card()
            hresult, _reader, state, _active, atr = scard.SCardStatus(card)
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._session_error(hresult, "SCardStatus")
            return state, bytes(atr)

    def disconnect(self) -> None:
        with self._lock:
            card = self._card
            self._drop()
            if card is not None:
                dispose = self._dispose
                if self._reset_only_if_changed and not self._changed:
                    dispose = scard.SCARD_LEAVE_CARD
                scard.SCardDisconnect(card, dispose)
            self._release_context(pool=True)

    def _release_context(self, *, pool: bool) -> None:
        """Give the context back to the pool (or release it when it failed)."""
        context, self._context = self._context, None
        if context is None:
            return
        if pool:
            _pool.give(context)
        else:
            context.invalidate()

    def _drop(self) -> None:
        self._card = None
        self._protocol = None
        self._atr = None
        self._transaction_depth = 0

    def reconnect(self, reset: bool = False) -> None:
        with self._lock:
            if self._card is None:
                self.connect()
                if reset:
                    self.reconnect(reset=True)
                return
            protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
            init = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
            hresult, active = scard.SCardReconnect(self._card, scard.SCARD_SHARE_SHARED, protocols, init)
            if hresult != scard.SCARD_S_SUCCESS:
                exc = self._session_error(hresult, "SCardReconnect")
                if not isinstance(exc, errors.CardResetError):
                    raise exc
                hresult, active = scard.SCardReconnect(self._card, scard.SCARD_SHARE_SHARED, protocols, init)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise self._session_error(hresult, "SCardReconnect")
            self._set_protocol(active)
            self._refresh_atr()

    def _require_card(self) -> int:
        if self._card is None:
            raise NoCardError(f"{self._reader}: not connected")
        return self._card

    def _session_error(self, hresult: int, what: str) -> SscardError:
        exc = error_for_pcsc(hresult, f"{what}({self._reader})", session=True)
        if isinstance(exc, (NoCardError, PcscUnavailableError, errors.ReaderNotFoundError)):
            card = self._card
            self._drop()
            if card is not None:
                scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            if isinstance(exc, PcscUnavailableError) and self._context is not None:
                self._context.invalidate()
        return exc

    # -- data ---------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        with self._lock:
            card = self._require_card()
            assert self._protocol is not None
            if not self._changed and not leaves_state(apdu):
                self._changed = True
            hresult, response = scard.SCardTransmit(card, _PCI[self._protocol], list(bytes(apdu)))
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._session_error(hresult, "SCardTransmit")
            return bytes(response)

    def control(self, code: int, data: bytes = b"") -> bytes:
        """SCardControl on the connected card's handle: ``code`` is a full
        control code (see :func:`control_code`); answers the reader's bytes."""
        with self._lock:
            card = self._require_card()
            if code != control_code(CM_IOCTL_GET_FEATURE_REQUEST):
                self._changed = True  # e.g. a PIN pad's VERIFY: the card is reset at the end
            hresult, response = scard.SCardControl(card, code, list(bytes(data)))
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._session_error(hresult, "SCardControl")
            return bytes(response)

    def features(self) -> dict[int, int]:
        """The reader's PC/SC part 10 features ``{tag: control code}``; empty
        when the reader or its driver does not answer the feature request
        (vpcd among them).  A lost card still raises its transport error."""
        try:
            raw = self.control(control_code(CM_IOCTL_GET_FEATURE_REQUEST))
        except (NoCardError, PcscUnavailableError, errors.ReaderNotFoundError):
            raise
        except SscardError:
            return {}
        try:
            return parse_features(raw)
        except errors.ProtocolError:
            return {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            card = self._require_card()
            if self._transaction_depth == 0:
                hresult = scard.SCardBeginTransaction(card)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise self._session_error(hresult, "SCardBeginTransaction")
            self._transaction_depth += 1
            try:
                yield
            finally:
                self._transaction_depth -= 1
                if self._transaction_depth == 0 and self._card is not None:
                    scard.SCardEndTransaction(self._card, scard.SCARD_LEAVE_CARD)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = f"{self._protocol}" if self._card is not None else "disconnected"
        return f"PcscTransport({self._reader!r}, {state})"
