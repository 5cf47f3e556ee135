"""The terminal flows the ``flows`` section measures, each with the card it starts from.

A :class:`FlowCase` is one flow as the CLI runs it on one card session: the
card image it needs (a fresh copy before every call, so state-changing
flows always start from the same card), whether the session is detected
first (a blank card for issuance cannot be), and per-call state outside the
card (issuance needs a registry in which the holder has no card yet: a
fresh SQLite registry file per call, opened untimed).  Labels and the
minimum APDUs are in ``data/flows.toml``.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_card_image, demo_holder, demo_psam_image, demo_stock_card_image
from card_model.image import CardImage
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from terminal import flows
from terminal.bench._data import load_data
from terminal.bench.errors import BenchCheckError, BenchError
from terminal.flows import wallet
from terminal.flows.issuance import issue_card
from terminal.issuance import IssuanceOrder
from terminal.keysource.psam import PsamKeySource
from terminal.registry import Actor, Registry, open_registry
from terminal.session import CardSession

__all__ = ["FlowCase", "IssuanceRegistry", "flow_cases"]

NEW_PIN = "135790"
WALLET_AMOUNT = 100  # fen per load / purchase
WALLET_FUNDS = 100_000  # fen on the purchase card before every purchase
ACTOR = Actor(operator="bench", terminal="BENCH-T-0001")


@dataclass(frozen=True)
class FlowCase:
    """One measured flow (see the module docstring)."""

    name: str
    label: str
    run: Callable[[CardSession], object]
    image: Callable[[], CardImage]
    detect: bool = True
    before: Callable[[], None] | None = field(default=None)


class IssuanceRegistry:
    """A fresh SQLite registry for every issuance (the demo holder may hold one card)."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="sscard-bench-issuance-")
        self._numbers = itertools.count()
        self.registry: Registry | None = None

    def renew(self) -> None:
        self.close_registry()
        path = Path(self._folder.name) / f"registry-{next(self._numbers)}.db"
        self.registry, _journal = open_registry(f"sqlite:///{path}")

    def current(self) -> Registry:
        if self.registry is None:
            raise BenchError("the issuance registry was not prepared")
        return self.registry

    def close_registry(self) -> None:
        registry, self.registry = self.registry, None
        if registry is not None:
            registry.close()

    def close(self) -> None:
        self.close_registry()
        self._folder.cleanup()


def _order() -> IssuanceOrder:
    person, data = demo_holder("gen3")
    facts = {k: v for k, v in data.to_mapping().items() if k != "serial"}
    return IssuanceOrder.from_mapping(person.to_mapping(), facts)


def _funded_image() -> CardImage:
    """The demo card with ``WALLET_FUNDS`` in its wallet (loaded in process, once)."""
    card = CardOS(demo_card_image(life_cycle=LifeCycle.ACTIVE), interface="contact")
    psam = PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="bench PSAM"))
    session = CardSession(InProcessTransport(card, reader="bench card"), key_source=psam)
    try:
        session.connect()
        wallet.load(session, WALLET_FUNDS)
    finally:
        session.close()
        psam.close()
    return card.image.copy()


def _issue(registries: IssuanceRegistry, session: CardSession) -> object:
    result = issue_card(session, _order(), registry=registries.current(), actor=ACTOR)
    if result.life_cycle is not LifeCycle.PERSONALISED:
        raise BenchCheckError("the issuance did not finish the card")
    return result


def flow_cases(initial_pin: str, registries: IssuanceRegistry) -> list[FlowCase]:
    """Every flow of ``data/flows.toml`` with its card and its call."""
    table = load_data("flows")["flows"]

    def case(
        name: str,
        run: Callable[[CardSession], object],
        image: Callable[[], CardImage],
        *,
        detect: bool = True,
        before: Callable[[], None] | None = None,
    ) -> FlowCase:
        row = table.get(name)
        if row is None:
            raise BenchError(f"data/flows.toml has no flow {name}")
        return FlowCase(name, str(row["label"]), run, image, detect, before)

    def verify(session: CardSession) -> object:
        # a wrong PIN would raise PinError: every timed call verified
        return flows.verify_pin(session, initial_pin)

    active = partial(demo_card_image, life_cycle=LifeCycle.ACTIVE)
    funded = _funded_image()
    cases = [
        case("read_basic", flows.read_basic, active),
        case("read_holder", flows.read_holder, active),
        case("authenticate", flows.authenticate_card, active),
        case("pin_verify", verify, active),
        case("pin_change", lambda s: flows.change_pin(s, initial_pin, NEW_PIN), active),
        case("pin_reset", flows.reset_pin, active),
        case("pin_unblock", flows.unblock_pin, active),
        case("activate", flows.activate, partial(demo_card_image, life_cycle=LifeCycle.PERSONALISED)),
        case("wallet_load", lambda s: wallet.load(s, WALLET_AMOUNT), active),
        case("wallet_purchase", lambda s: wallet.purchase(s, WALLET_AMOUNT), funded.copy),
        case(
            "issuance",
            partial(_issue, registries),
            partial(demo_stock_card_image, 1),
            detect=False,
            before=registries.renew,
        ),
    ]
    if {c.name for c in cases} != set(table):
        raise BenchError("data/flows.toml and the measured flows differ")
    return cases
