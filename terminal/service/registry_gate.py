"""The service's card status registry: the journal hook of every card session
and the presentation gate (``journal.kind = "registry"``).

With a registry, every session the service opens for the native API, the
national drop-in, the wallet routes and the kiosk (:class:`~terminal.service.cards.CardRunner`)
runs the :class:`~terminal.presentation.PresentationGate`: the card's torn
journal entries are settled, the registry is asked about the card, a card
it refuses (reported lost, replaced, cancelled) has its application blocked
on the card and every flow but the status queries and a block is refused
with :class:`~terminal.registry.errors.CardRefused` (the decision's national
code, -1161..-1165; HTTP 409); a temporarily blocked card the registry
allows again is unblocked.  While the database cannot be reached, flows
marked ``needs_registry`` are refused with -1166 and the others run
(:mod:`terminal.service.journal_outage`).

The operator is ``journal.operator``, the terminal ``terminal.zdbm`` (else
``sscard-service``).  Issuance sessions (a blank card has no registry
record yet) do not pass the gate; :mod:`terminal.service.api_issuance`
consults the registry through the issuance flows.
"""

from __future__ import annotations

from dataclasses import dataclass

from apdu.errors import SscardError
from terminal.journal_hook import JournalHook, NullJournal
from terminal.presentation import PresentationGate
from terminal.registry import Actor, Registry, open_registry
from terminal.service.config import ServiceConfig
from terminal.service.errors import ServiceConfigError
from terminal.service.journal_outage import OutageTolerantJournal

__all__ = ["DEFAULT_TERMINAL", "ServiceRegistry", "open_service_registry", "service_actor"]

DEFAULT_TERMINAL = "sscard-service"


def service_actor(config: ServiceConfig) -> Actor:
    """Who works at this service: ``journal.operator`` at terminal ``terminal.zdbm``."""
    return Actor(operator=config.operator, terminal=config.zdbm or DEFAULT_TERMINAL)


@dataclass
class ServiceRegistry:
    """The journal hook and the gate of the service's card sessions."""

    journal: JournalHook
    gate: PresentationGate | None = None
    registry: Registry | None = None

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None


def open_service_registry(config: ServiceConfig) -> ServiceRegistry:
    """The registry of ``journal.kind`` (``$SSCARD_DB_URL``, else the default
    SQLite file); none: the null journal and no gate.  A registry that cannot
    be opened at start is a :class:`ServiceConfigError`."""
    if config.journal == "none":
        return ServiceRegistry(NullJournal())
    try:
        registry, journal = open_registry()
    except SscardError as exc:
        raise ServiceConfigError(
            f"journal.kind registry: cannot open the registry ({exc.error_id})"
        ) from None
    gate = PresentationGate(registry, actor=service_actor(config))
    # Through an outage of the registry database: reads go on, writes are refused clearly.
    return ServiceRegistry(OutageTolerantJournal(gate.journal_hook(journal)), gate, registry)
