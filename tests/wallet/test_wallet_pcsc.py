"""The wallet, park ticket and bank card end to end over pcscd + vpcd
(slots 8-11 of tests/conftest.py: 8 the card, 9 the PSAM, 10 a contactless
card), and a tear at every APDU of load and purchase injected with the
emulator's fault plan (tear before / after the card executes the command),
each followed by a new PC/SC session that resolves it in the registry
journal.  Every card inserted is removed."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psam_slot import demo_psam_source
from wallet_helpers import NOW, Slot, active_card, active_image

from apdu.errors import CardRemovedError, SscardError
from card_model.demo import demo_key_set
from card_model.purse import PurseState
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard
from emulator.stack import PcscStack
from terminal import flows
from terminal.errors import TornOperation
from terminal.flows import bankcard, ticket, wallet
from terminal.flows.wallet_errors import BalanceLimitExceeded, InsufficientBalance, TicketAlreadyBought
from terminal.journal_hook import MemoryJournal, RegistryJournal
from terminal.keysource import HsmKeySource, PsamKeySource, SoftwareHsm
from terminal.registry import Journal, open_registry
from terminal.session import CardSession

pytestmark = pytest.mark.pcsc

CARD_SLOT, PSAM_SLOT, CONTACTLESS_SLOT = 8, 9, 10
START = 2000
AMOUNT = 700


@pytest.fixture(scope="module")
def psam(pcsc_stack: PcscStack) -> Iterator[PsamKeySource]:
    with demo_psam_source(pcsc_stack, PSAM_SLOT) as source:
        yield source


@pytest.fixture
def card_slot(pcsc_stack: PcscStack) -> Iterator[Slot]:
    slot = Slot(CARD_SLOT, pcsc_stack.reader_for_slot(CARD_SLOT))
    try:
        yield slot
    finally:
        slot.remove()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journal]:
    path: Path = tmp_path_factory.mktemp("wallet") / "registry.db"
    _, journal = open_registry(f"sqlite:///{path}")
    try:
        yield journal
    finally:
        journal.close()


def _open(reader: str, psam: PsamKeySource, journal: object) -> CardSession:
    return CardSession.open(reader, key_source=psam, journal=journal)  # type: ignore[arg-type]


def test_wallet_ticket_and_bank_card_over_pcsc(
    card_slot: Slot, psam: PsamKeySource, pcsc_stack: PcscStack
) -> None:
    journal = MemoryJournal()
    card_slot.insert(active_card())
    session = _open(card_slot.reader, psam, journal)
    try:
        assert wallet.load(session, 98_000, now=NOW).balance == 98_000
        with pytest.raises(BalanceLimitExceeded):
            wallet.load(session, 2_001, now=NOW)
        assert wallet.load(session, 2_000, now=NOW).balance == 100_000
        for fen in (150, 250):
            wallet.purchase(session, fen, now=NOW)
        with pytest.raises(InsufficientBalance):
            wallet.purchase(session, 100_000, now=NOW)
        hsm = HsmKeySource(SoftwareHsm(demo_key_set()))
        assert wallet.purchase(session, 600, key_source=hsm, now=NOW).balance == 99_000
        records = wallet.wallet_records(session)
        assert records.balance.balance == 99_000
        assert [(r.operation, r.amount) for r in records.records] == [
            ("purchase", 600),
            ("purchase", 250),
            ("purchase", 150),
            ("load", 2_000),
            ("load", 98_000),
        ]
        sold = dt.datetime(2026, 5, 1, 10, 0, 0)
        assert ticket.buy_ticket(session, now=sold).year == 2026
        assert ticket.read_ticket(session, on=sold.date()).valid
        with pytest.raises(TicketAlreadyBought):
            ticket.buy_ticket(session, now=sold)
        info = bankcard.read_bank_card(session)
        assert info.source == "pse" and info.pan_masked.startswith("629113******")
        assert flows.read_basic(session).card_number == "X00000019"
    finally:
        session.close()
    contactless = Slot(CONTACTLESS_SLOT, pcsc_stack.reader_for_slot(CONTACTLESS_SLOT))
    contactless.insert(active_card(interface="contactless"))
    try:
        other = _open(contactless.reader, psam, journal)
        try:
            assert other.info.interface == "contactless"
            assert bankcard.read_bank_card(other).source == "ppse"
            assert wallet.load(other, 100, now=NOW).tac_verified
        finally:
            other.close()
    finally:
        contactless.remove()


def _state(card: CardOS) -> PurseState:
    spec = card.profile.applications.purse
    assert spec is not None
    return PurseState.from_bytes(bytes(card.image.binary_files[spec.state_fid].content))


FLOWS: dict[str, Callable[[CardSession], object]] = {
    "wallet.load": lambda s: wallet.load(s, AMOUNT, now=NOW),
    "wallet.purchase": lambda s: wallet.purchase(s, AMOUNT, now=NOW),
}
CASES = [(op, n, kind) for op in sorted(FLOWS) for n in range(1, 6) for kind in ("tear_before", "tear_after")]


@pytest.mark.parametrize(("operation", "nth", "kind"), CASES)
def test_tear_at_every_apdu_over_pcsc(
    operation: str, nth: int, kind: str, card_slot: Slot, psam: PsamKeySource, registry: Journal
) -> None:
    card = CardOS(active_image())
    plan = FaultPlan()
    card_slot.insert(FaultyCard(card, plan))
    hook = RegistryJournal(registry, terminal="BJ-T-0009", operator="op-wallet")
    session = _open(card_slot.reader, psam, hook)
    wallet.load(session, START, now=NOW)
    before = _state(card)
    plan.arm(Fault.of(kind, nth=nth))
    torn: TornOperation | None = None
    completed = False
    try:
        FLOWS[operation](session)
        completed = True
    except TornOperation as exc:
        torn = exc
    except CardRemovedError:
        pass
    finally:
        with contextlib.suppress(SscardError):
            session.close()
    assert plan.fired, "the fault did not fire"
    card_slot.reinsert()
    fresh = _open(card_slot.reader, psam, hook)
    try:
        resolution = flows.resolve_torn(fresh)
        assert not resolution.unresolved
        if torn is not None:
            assert torn.entry_id is not None
            entry = registry.entry(torn.entry_id)
            expected = "applied" if kind == "tear_after" else "not_applied"
            assert entry.state == "resolved" and entry.resolution == f"card_state_{expected}"
            assert entry.result == ("ok" if expected == "applied" else "failed")
            assert [o.outcome for o in resolution.entries] == [expected]
        assert registry.incomplete(fresh.card_id) == []
        now = _state(card)
        changed = completed or (torn is not None and kind == "tear_after")
        delta = AMOUNT if operation == "wallet.load" else -AMOUNT
        assert now.balance == before.balance + (delta if changed else 0)
        if operation == "wallet.load":
            assert now.online_counter == before.online_counter + (1 if changed else 0)
        else:
            assert now.offline_counter == before.offline_counter + (1 if changed else 0)
        again = wallet.purchase(fresh, 1, now=NOW)
        assert again.counter == now.offline_counter and again.balance == now.balance - 1
    finally:
        fresh.close()
