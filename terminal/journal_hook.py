"""The one journal hook every card flow goes through.

Every flow opens a :class:`JournalScope` before it touches the card::

    with JournalScope(session.journal, "pin.change", session.card_id, {"initial_before": True}) as scope:
        ...                                   # reads, key source calls
        with scope.write("CHANGE PIN"):       # the state-changing command
            session.send(...)
        scope.add(retries_left=3)             # outcome details

- ``begin`` is recorded (durably, with the registry journal) before the card
  is touched; a failing ``begin`` stops the flow before any APDU.
- A ``guard`` (the session's admission: card refused by the registry,
  registry unreachable, agent rule) runs right after ``begin``; if it
  raises, the entry is completed as refused and nothing is sent.
- Normal exit: ``complete(result="ok")`` with the outcome details.
- An exception: ``complete(result="failed" | "refused", national_code, sw)``
  ("refused" for business rules and bad input: PIN entry rules -31..-36,
  invalid input, data not matching the card, registry refusals).
- A transport failure (card removed, reset, mute, PC/SC gone) while a write
  is in flight (inside ``scope.write``), or after a write of the same scope
  was done (a flow of several writes): the command may or may not have
  executed, or the card holds part of the operation, so the entry is marked
  *torn* with what is known and
  :class:`~terminal.errors.TornOperation` is raised; the next session
  resolves it (``terminal.flows.resolve_torn``) from the card's state.

Details never carry PINs or keys: keys naming a PIN/key/password/secret are
refused for every hook (the same rule as the registry journal), values are
text, integers or booleans.

Hooks: :class:`NullJournal` (records nothing), :class:`MemoryJournal`
(in-process list, for tests and the demo) and :class:`RegistryJournal`
(adapter over :class:`terminal.registry.Journal`); all three check the
details in :class:`CheckedHook` and record them in ``_begin``/``_complete``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from apdu.errors import InvalidInput, PinEntryError, SscardError, TransportError
from terminal.errors import CardDataMismatch, TornOperation
from terminal.registry.errors import JournalDetailsForbidden, JournalEntryNotFound, RegistryRefused
from terminal.registry.sanitize import is_forbidden_key

if TYPE_CHECKING:
    from terminal.registry import Journal

__all__ = [
    "CheckedHook",
    "DetailValue",
    "IncompleteEntry",
    "JournalHook",
    "JournalResult",
    "JournalScope",
    "MemoryJournal",
    "NullJournal",
    "Outcome",
    "RegistryJournal",
    "check_details",
]

log = logging.getLogger("sscard.journal")

JournalResult = Literal["ok", "failed", "refused"]
DetailValue = str | int | bool
_REFUSALS = (PinEntryError, InvalidInput, CardDataMismatch, RegistryRefused)


def check_details(details: Mapping[str, DetailValue] | None) -> dict[str, str]:
    """Details as text; refuses keys that name a PIN, key, password or secret."""
    out: dict[str, str] = {}
    for key, value in (details or {}).items():
        if is_forbidden_key(key):
            raise JournalDetailsForbidden(key)
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int)):
            out[key] = str(value)
        else:
            raise InvalidInput(f"journal detail {key}: text, integer or boolean expected", kind="parameter")
    return out


@dataclass(frozen=True, slots=True)
class IncompleteEntry:
    """A journal entry begun but neither completed nor resolved."""

    entry_id: int
    operation: str
    card_id: str | None
    state: Literal["open", "torn"]
    details: Mapping[str, str] = field(default_factory=dict)
    torn_note: str | None = None


@runtime_checkable
class JournalHook(Protocol):
    def begin(self, operation: str, *, card_id: str | None, details: Mapping[str, DetailValue]) -> int | None:
        """Record the intent; returns the entry id (None for a hook that keeps nothing)."""
        ...

    def complete(
        self,
        entry_id: int | None,
        *,
        result: JournalResult,
        national_code: int = 0,
        sw: int | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None: ...

    def mark_torn(self, entry_id: int | None, note: str) -> None: ...

    def incomplete(self, card_id: str) -> list[IncompleteEntry]: ...

    def resolve(self, entry_id: int, *, resolution: str, result: JournalResult, note: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``complete`` records: the result, its codes and the checked details."""

    result: JournalResult
    national_code: int
    sw: int | None
    details: dict[str, str]


class CheckedHook:
    """The ``begin``/``complete`` half of a hook: details are checked
    (:func:`check_details`) once here, then handed to ``_begin``/``_complete``."""

    def begin(self, operation: str, *, card_id: str | None, details: Mapping[str, DetailValue]) -> int | None:
        return self._begin(operation, card_id, check_details(details))

    def complete(
        self,
        entry_id: int | None,
        *,
        result: JournalResult,
        national_code: int = 0,
        sw: int | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        self._complete(entry_id, Outcome(result, national_code, sw, check_details(details)))

    def _begin(self, operation: str, card_id: str | None, details: dict[str, str]) -> int | None:
        return None

    def _complete(self, entry_id: int | None, outcome: Outcome) -> None:
        return None


class NullJournal(CheckedHook):
    """Records nothing (still refuses secret-looking detail keys)."""

    def mark_torn(self, entry_id: int | None, note: str) -> None:
        return None

    def incomplete(self, card_id: str) -> list[IncompleteEntry]:
        return []

    def resolve(self, entry_id: int, *, resolution: str, result: JournalResult, note: str) -> None:
        return None


@dataclass(slots=True)
class MemoryEntry:
    entry_id: int
    operation: str
    card_id: str | None
    details: dict[str, str]
    begun_at: datetime
    state: Literal["open", "torn", "completed", "resolved"] = "open"
    result: JournalResult | None = None
    national_code: int | None = None
    sw: int | None = None
    outcome_details: dict[str, str] = field(default_factory=dict)
    torn_note: str | None = None
    resolution: str | None = None
    resolution_note: str | None = None


class MemoryJournal(CheckedHook):
    """An in-process journal (tests, the demo): ``entries`` in begin order."""

    def __init__(self) -> None:
        self.entries: list[MemoryEntry] = []

    def _entry(self, entry_id: int | None) -> MemoryEntry:
        for entry in self.entries:
            if entry.entry_id == entry_id:
                return entry
        raise JournalEntryNotFound(entry_id=entry_id)

    def _begin(self, operation: str, card_id: str | None, details: dict[str, str]) -> int | None:
        entry = MemoryEntry(len(self.entries) + 1, operation, card_id, details, datetime.now(UTC))
        self.entries.append(entry)
        return entry.entry_id

    def _complete(self, entry_id: int | None, outcome: Outcome) -> None:
        entry = self._entry(entry_id)
        entry.outcome_details = outcome.details
        entry.state, entry.result = "completed", outcome.result
        entry.national_code, entry.sw = outcome.national_code, outcome.sw

    def mark_torn(self, entry_id: int | None, note: str) -> None:
        entry = self._entry(entry_id)
        entry.state, entry.torn_note = "torn", note

    def incomplete(self, card_id: str) -> list[IncompleteEntry]:
        return [
            IncompleteEntry(e.entry_id, e.operation, e.card_id, e.state, dict(e.details), e.torn_note)
            for e in self.entries
            if e.card_id == card_id and e.state in ("open", "torn")
        ]

    def resolve(self, entry_id: int, *, resolution: str, result: JournalResult, note: str) -> None:
        entry = self._entry(entry_id)
        entry.state, entry.resolution, entry.result, entry.resolution_note = (
            "resolved",
            resolution,
            result,
            note,
        )

    def last(self, operation: str | None = None) -> MemoryEntry:
        """The most recent entry (of ``operation``)."""
        for entry in reversed(self.entries):
            if operation is None or entry.operation == operation:
                return entry
        raise JournalEntryNotFound(entry_id=None)


class RegistryJournal(CheckedHook):
    """Adapter over the registry's append-only :class:`terminal.registry.Journal`."""

    def __init__(self, journal: Journal, *, terminal: str, operator: str, agent: str | None = None) -> None:
        self.journal = journal
        self.terminal = terminal
        self.operator = operator
        self.agent = agent

    def _begin(self, operation: str, card_id: str | None, details: dict[str, str]) -> int | None:
        return self.journal.begin(
            operation,
            card_id=card_id,
            terminal=self.terminal,
            operator=self.operator,
            agent=self.agent,
            details=details,
        )

    def _complete(self, entry_id: int | None, outcome: Outcome) -> None:
        if entry_id is None:
            return
        self.journal.complete(
            entry_id,
            result=outcome.result,
            national_code=outcome.national_code,
            sw=outcome.sw,
            details=outcome.details,
        )

    def mark_torn(self, entry_id: int | None, note: str) -> None:
        if entry_id is not None:
            self.journal.mark_torn(entry_id, note)

    def incomplete(self, card_id: str) -> list[IncompleteEntry]:
        out = []
        for entry in self.journal.incomplete(card_id):
            state: Literal["open", "torn"] = "torn" if entry.state == "torn" else "open"
            out.append(
                IncompleteEntry(
                    entry.id, entry.operation, entry.card_id, state, dict(entry.details), entry.torn_note
                )
            )
        return out

    def resolve(self, entry_id: int, *, resolution: str, result: JournalResult, note: str) -> None:
        self.journal.resolve(entry_id, resolution=resolution, result=result, note=note)


class JournalScope:
    """One flow's journal entry (see the module docstring)."""

    def __init__(
        self,
        hook: JournalHook,
        operation: str,
        card_id: str | None,
        details: Mapping[str, DetailValue] | None = None,
        *,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.hook = hook
        self.guard = guard
        self.operation = operation
        self.card_id = card_id
        self.details: dict[str, DetailValue] = dict(details or {})
        self.outcome: dict[str, DetailValue] = {}
        self.entry_id: int | None = None
        self._in_flight: str | None = None
        self._writes_done: list[str] = []
        self._closed = False

    def __enter__(self) -> JournalScope:
        self.entry_id = self.hook.begin(self.operation, card_id=self.card_id, details=self.details)
        if self.guard is not None:
            try:
                self.guard()
            except SscardError as exc:
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return self

    def add(self, **details: DetailValue) -> None:
        """Outcome details (recorded with ``complete``)."""
        check_details(details)
        self.outcome.update(details)

    @contextmanager
    def write(self, what: str) -> Iterator[None]:
        """Mark the state-changing command ``what`` as in flight for its duration."""
        self._in_flight = what
        yield
        self._writes_done.append(what)
        self._in_flight = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        if exc is None:
            self.hook.complete(self.entry_id, result="ok", details=self.outcome)
            return
        if (self._in_flight is not None or self._writes_done) and isinstance(exc, TransportError):
            # a write in flight, or one done before the card vanished (the card
            # may hold part of the operation): torn, for the next session to settle
            note = self._torn_note(exc)
            try:
                self.hook.mark_torn(self.entry_id, note)
            except SscardError as journal_exc:
                log.error("journal: marking entry %s torn failed: %s", self.entry_id, journal_exc.error_id)
            raise TornOperation(
                f"{self.operation}: {note}", operation=self.operation, entry_id=self.entry_id
            ) from exc
        if isinstance(exc, SscardError):
            result: JournalResult = "refused" if isinstance(exc, _REFUSALS) else "failed"
            code, sw = exc.national_code, exc.sw
        else:
            result, code, sw = "failed", -1000, None
        try:
            self.hook.complete(self.entry_id, result=result, national_code=code, sw=sw, details=self.outcome)
        except SscardError as journal_exc:
            log.error("journal: completing entry %s failed: %s", self.entry_id, journal_exc.error_id)

    def _torn_note(self, exc: SscardError) -> str:
        done = f"; completed before: {', '.join(self._writes_done)}" if self._writes_done else ""
        if self._in_flight is None:
            return f"{exc.error_id} between writes{done}"
        return f"{exc.error_id} while {self._in_flight} was in flight{done}"
