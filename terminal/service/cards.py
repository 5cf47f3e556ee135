"""Running one business verb against a card: choose the reader, wait for the
card, queue behind other operations on it, open the session, run the
terminal flow, close (the card is reset: no PIN state outlives the verb).

Every verb is a function ``fn(session) -> result`` over the terminal API
(:mod:`terminal.flows`); the service adds no card logic of its own.  The
runner publishes ``flow_started`` / ``flow_progress`` / ``flow_finished``
events and settles torn operations of the journal first
(:func:`terminal.flows.resolve_torn`) when a journal is configured.

With the registry configured (``journal.kind = "registry"``) every session
passes the registry's :class:`~terminal.presentation.PresentationGate`
(:mod:`terminal.service.registry_gate`): the gate settles the torn
operations, asks the registry about the card, blocks the application of a
card the registry refuses (lost, replaced, cancelled) and refuses its flows
with :class:`~terminal.registry.errors.CardRefused` (the decision's national
code) except the status queries and a block.

While the registry database cannot be reached, flows that do not need it
(reads, status queries) keep working and settling torn entries waits for
the next session; flows that need it are refused before they touch the card
with ``registry_unavailable`` (-1166), naming the operation
(:mod:`terminal.service.journal_outage`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from apdu.errors import KeySourceError, NoCardError, SscardError
from sm_crypto.x509 import Sm2Certificate
from terminal import flows
from terminal.journal_hook import JournalHook, NullJournal
from terminal.keysource.base import KeySource
from terminal.presentation import PresentationGate
from terminal.readers import ReaderInfo, select_reader
from terminal.registry.errors import RegistryStorageError
from terminal.service.backend import CardBackend
from terminal.service.config import ServiceConfig
from terminal.service.errors import CardWaitTimeout
from terminal.service.events import EventHub
from terminal.service.journal_outage import registry_unavailable
from terminal.service.keysources import KeySourceProvider
from terminal.service.opqueue import CardQueue, Ticket
from terminal.service.responses import code_text
from terminal.session import CardSession

__all__ = ["CardRunner", "CardTarget", "HeldSession", "KeyChoice"]

log = logging.getLogger("sscard.service.cards")

T = TypeVar("T")
POLL_SECONDS = 0.1
KeyChoice = Literal["configured", "none"]


@dataclass(frozen=True, slots=True)
class CardTarget:
    """Which card: reader name substring (None: the configured one, else by
    ``itype``), national ``itype`` (1..4) and how long to wait for a card."""

    reader: str | None = None
    itype: int = 3
    wait: float = 0.0


class HeldSession:
    """An open session holding its card's queue ticket (an HSM step sequence)."""

    def __init__(self, runner: CardRunner, operation: str, session: CardSession, ticket: Ticket) -> None:
        self.runner = runner
        self.operation = operation
        self.session = session
        self.ticket = ticket
        self._closed = False

    def close(self, *, ok: bool, error: SscardError | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.session.transport.connected:
                self.session.close()
        except SscardError as exc:
            log.debug("closing the session: %s", exc.error_id)
        finally:
            self.ticket.release()
            self.runner.finished(self.operation, self.session.transport.reader, ok=ok, error=error)


class CardRunner:
    """See the module docstring."""

    def __init__(
        self,
        config: ServiceConfig,
        backend: CardBackend,
        hub: EventHub,
        queue: CardQueue,
        keys: KeySourceProvider,
        journal: JournalHook,
        anchors: tuple[Sm2Certificate, ...] = (),
        *,
        gate: PresentationGate | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.hub = hub
        self.queue = queue
        self.keys = keys
        self.journal = journal
        self.anchors = anchors
        self.gate = gate

    # -- choosing the card ----------------------------------------------------------------

    def choose_reader(self, target: CardTarget, *, operation: str = "") -> ReaderInfo:
        """The reader holding the card, waiting up to ``target.wait`` seconds."""
        pattern = target.reader if target.reader else (self.config.card_reader or None)
        deadline = time.monotonic() + max(0.0, target.wait)
        announced = False
        while True:
            try:
                return select_reader(self.backend.readers(), pattern=pattern, itype=target.itype)
            except NoCardError:
                if time.monotonic() >= deadline:
                    if target.wait > 0:
                        raise CardWaitTimeout(f"no card within {target.wait:g} s") from None
                    raise
            if not announced and operation:
                announced = True
                self.hub.publish("flow_progress", operation=operation, step="waiting_for_card")
            self.hub.wait_for_change(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    # -- sessions ---------------------------------------------------------------------------

    def _key_source(self, choice: KeyChoice | KeySource) -> KeySource | None:
        if choice == "configured":
            return self.keys.get()
        if choice == "none":
            return None
        return choice

    def open_session(self, reader: str, *, key_source: KeyChoice | KeySource = "configured") -> CardSession:
        session = CardSession(
            self.backend.open_transport(reader),
            key_source=self._key_source(key_source),
            journal=self.journal,
            trust_anchors=self.anchors,
            terminal_number=self.config.terminal_number or None,
            device_number=self.config.device_number,
            gate=self.gate,
        )
        try:
            session.connect()
            if self.gate is None and not isinstance(self.journal, NullJournal):
                try:
                    flows.resolve_torn(session)
                except RegistryStorageError as exc:
                    # The registry is unreachable: a read need not wait for it; a
                    # write is refused at its journal entry; the next session settles.
                    log.warning("torn operations not settled now: %s", exc.error_id)
        except BaseException:
            if session.transport.connected:
                session.close()
            raise
        return session

    def run(
        self,
        operation: str,
        target: CardTarget,
        fn: Callable[[CardSession], T],
        *,
        key_source: KeyChoice | KeySource = "configured",
    ) -> T:
        """Run ``fn`` on the card of ``target`` (see the module docstring)."""
        held = self.hold(operation, target, key_source=key_source)
        try:
            result = fn(held.session)
        except RegistryStorageError as exc:
            refusal = registry_unavailable(operation, exc)
            held.close(ok=False, error=refusal)
            raise refusal from exc
        except SscardError as exc:
            self._after_error(exc)
            held.close(ok=False, error=exc)
            raise
        except BaseException:
            held.close(ok=False)
            raise
        held.close(ok=True)
        return result

    def hold(
        self, operation: str, target: CardTarget, *, key_source: KeyChoice | KeySource = "configured"
    ) -> HeldSession:
        """Choose, queue and open; the caller closes the :class:`HeldSession`."""
        self.hub.publish("flow_started", operation=operation, reader=target.reader)
        try:
            reader = self.choose_reader(target, operation=operation)
            if self.queue.busy(reader.name):
                self.hub.publish(
                    "flow_progress", operation=operation, reader=reader.name, step="waiting_in_queue"
                )
            ticket = self.queue.acquire(reader.name, self.config.queue_wait_seconds)
        except SscardError as exc:
            self.finished(operation, target.reader, ok=False, error=exc)
            raise
        try:
            session = self.open_session(reader.name, key_source=key_source)
        except SscardError as exc:
            ticket.release()
            self._after_error(exc)
            self.finished(operation, reader.name, ok=False, error=exc)
            raise
        except BaseException:
            ticket.release()
            raise
        self.hub.publish("flow_progress", operation=operation, reader=reader.name, step="card_connected")
        return HeldSession(self, operation, session, ticket)

    def _after_error(self, exc: SscardError) -> None:
        if isinstance(exc, KeySourceError):
            self.keys.invalidate(exc)

    def finished(
        self, operation: str, reader: str | None, *, ok: bool, error: SscardError | None = None
    ) -> None:
        fields: dict[str, Any] = {"operation": operation, "reader": reader, "ok": ok}
        if error is not None:
            fields["error"] = error.error_id
            fields["national_code"] = code_text(error.national_code)
        else:
            fields["national_code"] = code_text(0) if ok else None
        self.hub.publish("flow_finished", **fields)
        log.info(
            "%s on %s: %s", operation, reader or "-", "ok" if ok else (error.error_id if error else "failed")
        )
