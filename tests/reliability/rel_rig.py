"""The rig of the service-level infrastructure and soak tests: a private
pcscd (rel_pcscd, vpcd slots 48-53), the demo PSAM in slot 49, the service
as its own process (rel_service) and a subscriber of its event stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rel_pcscd import PrivatePcscd
from rel_service import EventListener, ServiceProcess

from card_model.demo import demo_psam_image
from emulator.psam import PsamCard
from emulator.vpcd import CardWrapper, VirtualCard, VpcdLink

PSAM_SLOT = 49
CARD_SLOTS = (48, 50, 51, 52)
ANSWER_LIMIT = 2.0  # service.card_answer_timeout_seconds of the fault tests
EF07_PHONE = "3F00EF07|21|$"


class Wrapper(CardWrapper):
    """A card whose ``hook`` may intercept a command (answer it, delay it, tear)."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.hook: Callable[[bytes], bytes | None] | None = None

    def process(self, apdu: bytes) -> bytes:
        hook = self.hook
        if hook is not None:
            answer = hook(apdu)
            if answer is not None:
                return answer
        return self.card.process(apdu)


class Rig:
    """The private pcscd, the PSAM, the service process and its event stream."""

    def __init__(
        self,
        tmp: Path,
        *,
        env: Mapping[str, str] | None = None,
        journal: str = "none",
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        launcher: Sequence[str] = ("-m", "terminal.service"),
    ) -> None:
        self.pcscd = PrivatePcscd(tmp / "pcscd", entries=3)
        self.pcscd.start()
        self.links: dict[int, VpcdLink] = {}
        self.psam = Wrapper(PsamCard(demo_psam_image()))
        self.put(PSAM_SLOT, self.psam)
        settings = {"service": {"card_answer_timeout_seconds": ANSWER_LIMIT}, **(extra or {})}
        self.service = ServiceProcess(
            tmp,
            {**self.pcscd.client_env, **(env or {})},
            psam_reader=self.pcscd.reader(PSAM_SLOT),
            journal=journal,
            extra=settings,
            launcher=launcher,
        ).start()
        self.events = EventListener(self.service)
        self.events.next(lambda e: e["event"] == "hello")

    def reader(self, slot: int) -> str:
        return self.pcscd.reader(slot)

    def put(self, slot: int, card: VirtualCard) -> VpcdLink:
        link = VpcdLink(card, slot)
        link.insert()
        self.links[slot] = link
        return link

    def pull(self, slot: int) -> None:
        link = self.links.pop(slot, None)
        if link is not None:
            link.remove()

    def reinsert_all(self) -> None:
        """After pcscd came back: every card goes in again (vpcd lost its connections)."""
        for link in self.links.values():
            link.remove()
            link.insert()
        for slot in self.links:
            self.wait_card(slot)

    def recover(self) -> None:
        """After a kill: the outage is reported, pcscd starts again, the service
        reports it back and sees the cards again."""
        self.events.next(lambda e: e["event"] == "pcsc_unavailable")
        self.pcscd.start()
        self.events.next(lambda e: e["event"] == "pcsc_available")
        self.reinsert_all()

    def wait_card(self, slot: int, present: bool = True) -> None:
        reader = self.reader(slot)
        self.service.wait_until(lambda: self.service.card_present(reader) == present, f"card in {reader}")

    def call(self, path: str, slot: int, **body: Any) -> tuple[int, dict[str, Any]]:
        answer = self.service.post(path, {"reader": self.reader(slot), **body})
        return answer.status_code, answer.json()

    def close(self) -> None:
        self.events.close()
        self.service.stop()
        for slot in list(self.links):
            self.pull(slot)
        self.pcscd.stop()


def assert_refused(status: int, body: dict[str, Any], errors: set[str]) -> None:
    """A documented error body (not a 500) with one of ``errors`` and its national code."""
    assert status in (404, 409, 503), (status, body)
    assert body["error"] in errors, body
    assert body["national_code"].startswith("-") and body["message"] and body["message_en"], body
