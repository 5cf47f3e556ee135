"""Everything one running service shares: configuration, token, readers,
events, the card queue, key source, journal and registry gate, PIN desk and
PIN page."""

from __future__ import annotations

import time
from dataclasses import dataclass

from terminal.journal_hook import JournalHook
from terminal.service.backend import CardBackend, PcscBackend
from terminal.service.cards import CardRunner
from terminal.service.config import ServiceConfig
from terminal.service.events import EventHub
from terminal.service.keysources import KeySourceProvider, load_trust_anchors
from terminal.service.opqueue import CardQueue
from terminal.service.pinentry import AutoPinEntry, PinDesk, PinEntryProvider, PinPadEntry, PinPageEntry
from terminal.service.pinpage import PinPageBroker
from terminal.service.ratelimit import PinRateLimiter
from terminal.service.registry_gate import ServiceRegistry, open_service_registry
from terminal.service.tokens import AccessToken, load_or_create_token

__all__ = ["ServiceContext"]


def _pin_provider(config: ServiceConfig, backend: CardBackend, broker: PinPageBroker) -> PinEntryProvider:
    """``pin.entry``: the PIN page, the reader's PIN pad, or auto (PIN pad where there is one)."""
    page = PinPageEntry(broker, timeout=config.pin_entry_timeout_seconds)
    pinpad = PinPadEntry(backend, timeout=config.pin_entry_timeout_seconds)
    if config.pin_entry == "page":
        return page
    if config.pin_entry == "pinpad":
        return pinpad
    return AutoPinEntry(pinpad, page)


@dataclass
class ServiceContext:
    config: ServiceConfig
    backend: CardBackend
    token: AccessToken
    hub: EventHub
    queue: CardQueue
    keys: KeySourceProvider
    journal: JournalHook
    registry: ServiceRegistry
    runner: CardRunner
    broker: PinPageBroker
    desk: PinDesk
    started: float

    @classmethod
    def build(
        cls,
        config: ServiceConfig,
        *,
        backend: CardBackend | None = None,
        pin_provider: PinEntryProvider | None = None,
        token: AccessToken | None = None,
        journal: JournalHook | None = None,
        registry: ServiceRegistry | None = None,
    ) -> ServiceContext:
        """Wire the service from its configuration; tests pass their own backend,
        PIN provider, token, journal (no registry gate then) or registry."""
        if backend is None:
            backend = PcscBackend(answer_timeout=config.card_answer_timeout_seconds)
        token = token if token is not None else load_or_create_token(config.token_file)
        hub = EventHub()
        queue = CardQueue()
        keys = KeySourceProvider(config, backend)
        if registry is None:
            registry = ServiceRegistry(journal) if journal is not None else open_service_registry(config)
        journal = registry.journal
        anchors = load_trust_anchors(config.trust_anchors)
        runner = CardRunner(config, backend, hub, queue, keys, journal, anchors, gate=registry.gate)
        broker = PinPageBroker(hub)
        if pin_provider is None:
            pin_provider = _pin_provider(config, backend, broker)
        limiter = PinRateLimiter(
            attempts=config.pin_attempts_per_window,
            window=config.pin_window_seconds,
            failure_delay=config.pin_failure_delay_seconds,
        )
        return cls(
            config=config,
            backend=backend,
            token=token,
            hub=hub,
            queue=queue,
            keys=keys,
            journal=journal,
            registry=registry,
            runner=runner,
            broker=broker,
            desk=PinDesk(pin_provider, limiter),
            started=time.time(),
        )

    def close(self) -> None:
        self.backend.stop_watch()
        self.keys.close()
        self.registry.close()
