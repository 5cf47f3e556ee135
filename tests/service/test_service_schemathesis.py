"""Property-based tests of the native API from its own OpenAPI document
(schemathesis): generated requests, valid and invalid, against the real
service under uvicorn with a demo card in slot 12, the demo PSAM in slot 13.
No answer may be a server error, and every answer must match the documented
schema.  The example count is bounded so the whole module runs in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from service_cards import TOKEN, auth, card_os
from service_cards import settings as service_settings

from emulator.vpcd import VpcdLink
from terminal.journal_hook import MemoryJournal
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.pinentry import ScriptedPinEntry
from terminal.service.server import ServiceServer, bind_sockets
from terminal.service.tokens import AccessToken

EXAMPLES = 4


@pytest.fixture(scope="module")
def fuzzed_service(
    tmp_path_factory: pytest.TempPathFactory, card_reader: str, psam_reader: str, psam: VpcdLink
) -> Iterator[ServiceServer]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    doc = service_settings(
        tmp,
        card_reader,
        psam_reader,
        service={"port": 0, "national_port": 0, "card_wait_max_seconds": 0.1, "queue_wait_seconds": 2.0},
    )
    bound = bind_sockets(config_from_mapping(doc))
    app = create_app(
        bound.config, token=AccessToken(TOKEN), pin_provider=ScriptedPinEntry(), journal=MemoryJournal()
    )
    with ServiceServer(bound, app) as running:
        yield running


@pytest.fixture(scope="module")
def card_in_reader(card_reader: str, pcsc_stack: Any) -> Iterator[None]:
    """One demo card for the whole module (the fuzzer changes its state freely)."""
    from service_cards import CARD_SLOT, inserted

    with inserted(card_os(3), CARD_SLOT, card_reader):
        yield


def _document() -> dict[str, Any]:
    """The OpenAPI document of the service (the same code the fuzzed server runs;
    building the app touches no reader).  Loaded at import: pytest needs the
    operations to parametrize the test."""
    app = create_app(config_from_mapping({}), token=AccessToken(TOKEN), journal=MemoryJournal())
    return app.native.openapi()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(
    case: Any, fuzzed_service: ServiceServer, card_in_reader: None, http_session: requests.Session
) -> None:
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{fuzzed_service.config.port}",
        session=http_session,
        headers=auth(),
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=20,
    )
