"""The wallet, park ticket and bank card flows in process, over the real
card OS and PSAM."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest
from wallet_helpers import NOW, active_card, psam_source, session_for

from apdu.errors import ApplicationBlocked, KeySourceError, SecureMessagingError
from card_model.demo import demo_key_set
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from card_model.lifecycle import LifeCycle
from terminal import flows
from terminal.flows import bankcard, ticket, wallet
from terminal.flows.wallet_errors import (
    BalanceLimitExceeded,
    BankCardNotAvailable,
    InsufficientBalance,
    InvalidAmount,
    InvalidTicketKind,
    InvalidTicketYear,
    TicketAlreadyBought,
    TicketNotAvailable,
    TicketNotReplaceable,
    WalletCardNotGenuine,
    WalletInactive,
    WalletNotAvailable,
    WalletProofInvalid,
    WalletProofUnchecked,
)
from terminal.journal_hook import MemoryJournal
from terminal.keysource import DevKeyFileKeySource, HsmKeySource, SoftwareHsm
from terminal.keysource.purse import PurseKeys, purse_keys
from terminal.session import CardSession


def _session(
    generation: int = 3, *, life_cycle: LifeCycle = LifeCycle.ACTIVE, **options: object
) -> CardSession:
    options.setdefault("key_source", psam_source())
    session, _ = session_for(active_card(generation, life_cycle=life_cycle), **options)  # type: ignore[arg-type]
    return session


def _dev(key_set: IssuerKeySet) -> DevKeyFileKeySource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DevKeyFileKeySource(key_set)


def test_load_purchase_sequence_with_balance_checks() -> None:
    journal = MemoryJournal()
    session = _session(journal=journal)
    assert wallet.wallet_balance(session).to_dict()["balance"] == "0.00"
    loaded = wallet.load(session, 5000, now=NOW)
    assert (loaded.balance_before, loaded.balance, loaded.counter, loaded.tac_verified) == (0, 5000, 0, True)
    assert loaded.to_dict()["time"] == "2026-03-01 08:15:00" and loaded.terminal == "110102000001"
    expected = 5000
    for fen in (200, 300, 1):
        paid = wallet.purchase(session, fen, now=NOW)
        expected -= fen
        assert paid.balance == expected and paid.balance_before == expected + fen
    assert wallet.load(session, 99).counter == 1
    expected += 99
    assert wallet.wallet_balance(session).balance == expected
    records = wallet.wallet_records(session)
    assert [(r.operation, r.counter, r.amount) for r in records.records] == [
        ("load", 1, 99),
        ("purchase", 2, 1),
        ("purchase", 1, 300),
        ("purchase", 0, 200),
        ("load", 0, 5000),
    ]
    assert records.records[1].to_dict()["type_text"] == "消费 purchase"
    ops = [(e.operation, e.result) for e in journal.entries]
    assert ops.count(("wallet.load", "ok")) == 2 and ops.count(("wallet.purchase", "ok")) == 3
    entry = journal.last("wallet.purchase")
    assert entry.details["counter"] == "2" and entry.details["balance_before"] == "4500"
    assert (
        entry.outcome_details["tac_verified"] == "true" and entry.outcome_details["mac2_verified"] == "true"
    )
    # the social security application is selected again after every wallet flow
    assert flows.read_basic(session).card_number == "X00000019"


def test_limits_and_balance_are_refused_and_journaled() -> None:
    journal = MemoryJournal()
    session = _session(journal=journal)
    wallet.load(session, 99_000)
    with pytest.raises(BalanceLimitExceeded) as limit:
        wallet.load(session, 1_001)
    assert limit.value.national_code == -1701 and "990.00" in limit.value.message_zh
    assert journal.last("wallet.load").result == "refused"
    wallet.load(session, 1_000)  # exactly the limit
    with pytest.raises(InsufficientBalance) as short:
        wallet.purchase(session, 100_001)
    assert short.value.national_code == -1702 and journal.last("wallet.purchase").result == "refused"
    assert wallet.wallet_balance(session).balance == 100_000
    for bad in (0, -5, True, 2**32):
        with pytest.raises(InvalidAmount):
            wallet.load(session, bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidAmount):
            wallet.purchase(session, bad)  # type: ignore[arg-type]
    assert wallet.wallet_balance(session).balance == 100_000


def test_wallet_on_other_cards_and_states() -> None:
    with pytest.raises(WalletNotAvailable):
        wallet.wallet_balance(_session(1))
    with pytest.raises(TicketNotAvailable):
        ticket.read_ticket(_session(1))
    personalised = _session(life_cycle=LifeCycle.PERSONALISED)
    with pytest.raises(WalletInactive) as inactive:
        wallet.load(personalised, 100)
    assert inactive.value.sw == 0x6985
    assert flows.read_basic(personalised).generation == 3
    blocked = _session(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    with pytest.raises(ApplicationBlocked):
        wallet.wallet_balance(blocked)
    gen2 = _session(2)
    assert wallet.load(gen2, 1234).tac_verified and wallet.purchase(gen2, 234).balance == 1000


def test_key_sources_hsm_and_dev_key_file() -> None:
    session = _session()
    hsm = HsmKeySource(SoftwareHsm(demo_key_set()))
    assert wallet.load(session, 700, key_source=hsm).tac_verified
    assert wallet.purchase(session, 200, key_source=_dev(demo_key_set())).balance == 500
    bare = _session(key_source=None)
    with pytest.raises(KeySourceError) as none:
        wallet.load(bare, 100)
    assert none.value.national_code == -2201


def test_wrong_keys_card_not_genuine_and_proof_invalid() -> None:
    journal = MemoryJournal()
    session = _session(journal=journal)
    wrong = IssuerKeySet({k: bytes(16) for k in demo_key_set().masters})
    with pytest.raises(WalletCardNotGenuine) as fake:
        wallet.load(session, 100, key_source=_dev(wrong))
    assert fake.value.national_code == -21 and journal.last("wallet.load").result == "failed"
    wallet.load(session, 1000)
    with pytest.raises(SecureMessagingError) as mac:  # the card refuses the purchase MAC1 (9302)
        wallet.purchase(session, 100, key_source=_dev(wrong))
    assert mac.value.sw == 0x9302
    # only the TAC key differs: the card loads, the TAC does not verify
    bad_tac = IssuerKeySet(
        {k: (bytes(16) if k[1] is KeyRole.TK else v) for k, v in demo_key_set().masters.items()}
    )
    with pytest.raises(WalletProofInvalid) as proof:
        wallet.load(session, 100, key_source=_dev(bad_tac))
    entry = journal.last("wallet.load")
    assert proof.value.national_code == -15 and entry.result == "failed"
    assert entry.outcome_details["applied"] == "true" and entry.outcome_details["tac_verified"] == "false"
    assert wallet.wallet_balance(session).balance == 1100


class _FailingTacCheck:
    """The wallet side of a key source that gives MACs but fails (a module
    error, not a vanished reader) when asked to check a MAC2 or TAC."""

    def __init__(self, inner: PurseKeys) -> None:
        self.inner = inner

    def load_mac2(self, *args: Any) -> bytes | None:
        return self.inner.load_mac2(*args)

    def purchase_mac1(self, *args: Any) -> bytes:
        return self.inner.purchase_mac1(*args)

    def check_purchase_mac2(self, *args: Any) -> bool:
        raise KeySourceError("the security module did not answer", kind="no_psam")

    def check_tac(self, *args: Any) -> bool:
        raise KeySourceError("the security module did not answer", kind="no_psam")


class _Source:
    kind = "software_hsm"

    def __init__(self, purse: PurseKeys) -> None:
        self.purse = purse


def test_a_key_source_failing_after_the_card_applied_keeps_the_money_in_the_journal() -> None:
    journal = MemoryJournal()
    session = _session(journal=journal)
    wallet.load(session, 1000, now=NOW)
    failing = _Source(_FailingTacCheck(purse_keys(_dev(demo_key_set()))))
    with pytest.raises(WalletProofUnchecked) as loaded:
        wallet.load(session, 250, key_source=failing, now=NOW)  # type: ignore[arg-type]
    assert "12.50" in str(loaded.value) and loaded.value.national_code == -1705
    entry = journal.last("wallet.load")
    assert entry.result == "failed" and entry.outcome_details["applied"] == "true"
    assert entry.outcome_details["balance"] == "1250" and entry.outcome_details["proof_error"] == "no_psam"
    with pytest.raises(WalletProofUnchecked):
        wallet.purchase(session, 50, key_source=failing, now=NOW)  # type: ignore[arg-type]
    entry = journal.last("wallet.purchase")
    assert entry.outcome_details["applied"] == "true" and entry.outcome_details["balance"] == "1200"
    assert wallet.wallet_balance(session).balance == 1200


def test_ticket_buy_show_and_second_purchase_refused() -> None:
    journal = MemoryJournal()
    session = _session(journal=journal)
    now = dt.datetime(2026, 11, 30, 10, 0, 0)
    assert ticket.read_ticket(session, on=now.date()).present is False
    bought = ticket.buy_ticket(session, now=now)
    assert bought.to_dict() == {
        "year": 2026,
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "kind": "1",
        "kind_text": "公园年票 park annual ticket",
        "price": "100.00",
        "price_fen": 10000,
        "terminal": "110102000001",
        "sold_on": "2026-11-30",
        "replaced_year": None,
        "journal_entry": bought.journal_entry,
    }
    gate = ticket.read_ticket(session, on=dt.date(2026, 12, 1))
    assert gate.present and gate.valid and gate.year == 2026
    assert not ticket.read_ticket(session, on=dt.date(2027, 1, 1)).valid
    with pytest.raises(TicketAlreadyBought) as again:
        ticket.buy_ticket(session, 2026, now=now)
    assert again.value.national_code == -1710 and journal.last("ticket.buy").result == "refused"
    # the card keeps one ticket: next year's is not sold while this year's is valid
    with pytest.raises(TicketNotReplaceable) as still_valid:
        ticket.buy_ticket(session, 2027, now=now)
    assert still_valid.value.national_code == -1712 and journal.last("ticket.buy").result == "refused"
    assert ticket.read_ticket(session, on=dt.date(2026, 12, 31)).year == 2026
    january = dt.datetime(2027, 1, 2, 9, 0, 0)
    nxt = ticket.buy_ticket(session, 2027, now=january)
    assert nxt.replaced_year == 2026 and ticket.read_ticket(session, on=dt.date(2027, 5, 1)).valid
    # bought in advance on a card without a valid ticket; the earlier year may not overwrite it
    advance = _session()
    assert ticket.buy_ticket(advance, 2027, now=now).replaced_year is None
    with pytest.raises(TicketNotReplaceable):
        ticket.buy_ticket(advance, 2026, now=now)
    assert ticket.read_ticket(advance, on=dt.date(2027, 1, 1)).valid
    for year in (2025, 2028):
        with pytest.raises(InvalidTicketYear):
            ticket.buy_ticket(session, year, now=now)
    with pytest.raises(InvalidTicketYear):
        ticket.buy_ticket(session, "2027", now=now)  # type: ignore[arg-type]
    with pytest.raises(InvalidTicketKind):
        ticket.buy_ticket(session, 2026, kind="9", now=now)
    with pytest.raises(WalletInactive):
        ticket.buy_ticket(_session(life_cycle=LifeCycle.PERSONALISED), now=now)


def test_ticket_with_hsm_steps() -> None:
    from terminal.keysource import HsmConversation

    session = _session(key_source=None)
    conversation = HsmConversation(lambda keys: ticket.buy_ticket(session, key_source=keys))
    step = conversation.start()
    assert step.request is not None and step.request.startswith("03|0004|")
    step = conversation.answer(SoftwareHsm(demo_key_set()).process(step.request))
    assert step.done and step.result is not None and step.result.year == ticket.today().year


@pytest.mark.parametrize(
    ("interface", "protocol", "source"), [("contact", "T0", "pse"), ("contactless", "T1", "ppse")]
)
def test_bank_card_number(interface: str, protocol: str, source: str) -> None:
    journal = MemoryJournal()
    session, _ = session_for(active_card(interface=interface), journal=journal, protocol=protocol)
    info = bankcard.read_bank_card(session)
    assert info.source == source and info.bank == "BOB" and info.bank_name == "北京银行"
    assert (
        info.pan_masked.startswith("629113")
        and info.pan_masked[6:12] == "******"
        and len(info.pan_masked) == 16
    )
    assert info.expiry == "2035-02" and info.aid == "A000000333010101"
    entry = journal.last("bankcard.read")
    assert entry.outcome_details["pan_masked"] == info.pan_masked
    assert flows.read_basic(session).card_number == "X00000019"


def test_bank_card_absent_or_blocked() -> None:
    from card_model.profile import load_profile

    image = active_card().image
    spec = load_profile("gen3").applications.financial
    assert spec is not None
    del image.record_files[spec.record_fid]
    from emulator.card_os import CardOS

    session, _ = session_for(CardOS(image))
    with pytest.raises(BankCardNotAvailable):
        bankcard.read_bank_card(session)
    with pytest.raises(ApplicationBlocked):
        bankcard.read_bank_card(_session(life_cycle=LifeCycle.TEMPORARILY_BLOCKED))
    assert bankcard.mask_pan("1234567890") == "**********"
    assert bankcard.mask_pan("6291130000000000018") == "629113*********0018"
    assert Algorithm.SM4  # the demo card is SM4
