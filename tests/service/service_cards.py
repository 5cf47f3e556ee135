"""Helpers of the service tests: virtual cards in this area's vpcd slots,
card wrappers (a foreign card, a card that is pulled mid-command), the
service configuration and clients that look like loopback browsers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from card_model.demo import demo_ca, demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.foreign import FOREIGN_ATR as FOREIGN_ATR
from emulator.foreign import ForeignCard as ForeignCard
from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card
from emulator.vpcd import CardWrapper, Tear, VirtualCard

CARD_SLOT = 12
PSAM_SLOT = 13
HTTP_PORT = 18080
NATIONAL_PORT = 18081
BASE = f"http://127.0.0.1:{HTTP_PORT}"
NATIONAL_WS = f"ws://127.0.0.1:{NATIONAL_PORT}/"
EVENTS_WS = f"ws://127.0.0.1:{HTTP_PORT}/api/v1/events"
TOKEN = "service-test-token-" + "x" * 30
COUNTER_ORIGIN = "https://counter.example.cn"
LOOPBACK_CLIENT = ("127.0.0.1", 40123)

INITIAL_PIN = "211008"  # last 6 of the demo SSN 110102197305211008
SSN = "110102197305211008"
NEW_PIN = "135790"
OTHER_PIN = "246801"
WRONG_PIN = "975318"
# Strings that must never reach a log line: every PIN the tests use and the full SSN.
SECRETS = (INITIAL_PIN, SSN, NEW_PIN, OTHER_PIN, WRONG_PIN)


class PullingCard(CardWrapper):
    """A card that is pulled out when it receives a command with INS ``ins``
    (armed with :meth:`arm`): the vpcd link closes without an answer."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.ins: int | None = None
        self.pulled = False

    def arm(self, ins: int) -> None:
        self.ins = ins

    def process(self, apdu: bytes) -> bytes:
        if self.ins is not None and len(apdu) > 1 and apdu[1] == self.ins:
            self.ins = None
            self.pulled = True
            raise Tear()
        return self.card.process(apdu)


def card_os(generation: int = 3, *, life_cycle: LifeCycle | None = None, holder: str | None = None) -> CardOS:
    return CardOS(demo_card_image(generation, life_cycle=life_cycle, holder=holder))


def write_anchor(folder: Path) -> Path:
    path = folder / "demo-ca.pem"
    path.write_bytes(demo_ca().certificate.to_pem())
    return path


def settings(
    tmp: Path, card_reader: str, psam_reader: str, **sections: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The test configuration document: this area's readers, the demo PSAM as
    key source, the demo CA as trust anchor, no PIN delays, short waits."""
    doc: dict[str, dict[str, Any]] = {
        "service": {
            "port": HTTP_PORT,
            "national_port": NATIONAL_PORT,
            "origins": [COUNTER_ORIGIN],
            "token_file": str(tmp / "token"),
            "card_wait_seconds": 0.0,
            "card_wait_max_seconds": 10.0,
            "queue_wait_seconds": 10.0,
        },
        "readers": {"card": card_reader, "psam": psam_reader},
        "key_source": {"kind": "psam"},
        "terminal": {
            "zdbm": "T-SVC-01",
            "device_number": "DEV-0001",
            "trust_anchors": [str(write_anchor(tmp))],
        },
        "pin": {"entry": "page", "attempts_per_window": 1000, "failure_delay_seconds": 0.0},
    }
    for name, table in sections.items():
        doc.setdefault(name, {}).update(table)
    return doc


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fields(out: str) -> list[str]:
    """Split a national ``pOutInfo`` as counter software does (every field ends with ``|``)."""
    assert out.endswith("|"), out
    return out.split("|")[:-1]


@contextmanager
def client_log_quiet() -> Iterator[None]:
    """The test's own HTTP client (httpx, also under Starlette's TestClient)
    logs every request line with its URL at INFO.  A test that puts a PIN in
    a URL on purpose, to see the service refuse it, keeps that client-side
    line out of the log; the service's own log (and the run's secrets sweep)
    still sees everything the service writes."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
