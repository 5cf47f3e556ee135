"""Fixtures of the service tests.

vpcd slots of this area (tests/conftest.py): 12 the card under test, 13 the
demo PSAM (the service's key source).  Every card a test inserts is removed
when its ``with`` block ends; the PSAM stays for the session and is removed
at its end.

Every ``test_service_*`` test also checks the log: no record emitted while it
ran (any logger, any thread, DEBUG and up, with tracebacks) may contain a PIN
the tests use or the full social security number.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from service_cards import (
    BASE,
    CARD_SLOT,
    LOOPBACK_CLIENT,
    PSAM_SLOT,
    SECRETS,
    TOKEN,
    inserted,
    settings,
)
from service_harness import Insert, MakeService, Service

with warnings.catch_warnings():
    # starlette.testclient warns that it prefers another HTTP client package; it works as is.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from card_model.demo import demo_psam_image
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from emulator.vpcd import VirtualCard, VpcdLink
from terminal.journal_hook import MemoryJournal
from terminal.service.app import create_app
from terminal.service.backend import CardBackend
from terminal.service.config import config_from_mapping
from terminal.service.pinentry import PinEntryProvider, ScriptedPinEntry
from terminal.service.tokens import AccessToken


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    if not request.module.__name__.startswith("test_service"):
        # The browser tests (kiosk, PIN page) check their own service log.
        yield
        return
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        text = formatter.format(record)
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"a PIN or the SSN reached the log ({record.name}): {record.getMessage()[:80]}"


@pytest.fixture(scope="session")
def card_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(CARD_SLOT)


@pytest.fixture(scope="session")
def psam_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(PSAM_SLOT)


@pytest.fixture(scope="session")
def psam(psam_reader: str) -> Iterator[VpcdLink]:
    """The demo PSAM in slot 13 for the whole session."""
    with inserted(PsamCard(demo_psam_image()), PSAM_SLOT, psam_reader) as link:
        yield link


@pytest.fixture
def insert(card_reader: str) -> Insert:
    """``with insert(card) as link:`` puts a card into slot 12 for the block."""

    def put(card: VirtualCard) -> AbstractContextManager[VpcdLink]:
        return inserted(card, CARD_SLOT, card_reader)

    return put


def _start(
    tmp: Path,
    card_reader: str,
    psam_reader: str,
    *,
    backend: CardBackend | None = None,
    pin_provider: PinEntryProvider | None = None,
    **sections: dict[str, Any],
) -> Service:
    config = config_from_mapping(settings(tmp, card_reader, psam_reader, **sections), source="<test>")
    pins = ScriptedPinEntry()
    journal = MemoryJournal()
    app = create_app(
        config,
        backend=backend,
        pin_provider=pin_provider if pin_provider is not None else pins,
        token=AccessToken(TOKEN, tmp / "token"),
        journal=journal,
    )
    client = TestClient(app, base_url=BASE, client=LOOPBACK_CLIENT)
    client.__enter__()
    return Service(config, app, client, pins, journal)


@pytest.fixture
def make_service(tmp_path: Path, card_reader: str, psam_reader: str, psam: VpcdLink) -> Iterator[MakeService]:
    """A service with this test's own configuration sections (``pin={...}``)."""
    started: list[Service] = []

    def make(**options: Any) -> Service:
        service = _start(tmp_path, card_reader, psam_reader, **options)
        started.append(service)
        return service

    yield make
    for service in started:
        service.pins.clear()
        service.client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, card_reader: str, psam_reader: str, psam: VpcdLink
) -> Iterator[Service]:
    """The default service of a test module (scripted PIN entry, memory journal)."""
    svc = _start(tmp_path_factory.mktemp("service"), card_reader, psam_reader)
    try:
        yield svc
    finally:
        svc.client.__exit__(None, None, None)


@pytest.fixture
def svc(service: Service) -> Iterator[Service]:
    """The module's service, with the scripted PIN queue emptied after the test."""
    yield service
    service.pins.clear()
