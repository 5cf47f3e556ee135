"""Every flow and error path end to end: pcscd + vpcd, the card OS in slot 4,
the PSAM in slot 5 (PsamKeySource over PC/SC)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from terminal_cards import ForeignCard, TearingCard, anchors, card_os

from apdu.errors import (
    ApplicationBlocked,
    AuthenticationFailed,
    CardNotGenuine,
    CardRemovedError,
    KeySourceError,
    NoCardError,
    PinBlocked,
    PinEntryError,
    PinError,
    WrongCardType,
)
from card_model.demo import demo_key_set
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from emulator.vpcd import VpcdLink
from terminal import flows
from terminal.errors import TornOperation
from terminal.journal_hook import MemoryJournal, RegistryJournal
from terminal.keysource import DevKeyFileKeySource, HsmConversation, PsamKeySource, SoftwareHsm
from terminal.readers import list_readers
from terminal.registry import open_registry
from terminal.session import CardSession

INITIAL = "211008"
Insert = Callable[..., AbstractContextManager[VpcdLink]]


@pytest.fixture
def open_session(card_reader: str, psam_in_slot: PsamKeySource) -> Iterator[Callable[..., CardSession]]:
    opened: list[CardSession] = []

    def make(**options: object) -> CardSession:
        options.setdefault("key_source", psam_in_slot)
        options.setdefault("journal", MemoryJournal())
        options.setdefault("trust_anchors", anchors())
        session = CardSession.open(card_reader, **options)  # type: ignore[arg-type]
        opened.append(session)
        return session

    yield make
    for session in opened:
        if session.transport.connected:
            session.close()


def wrong_keys() -> DevKeyFileKeySource:
    with pytest.warns(UserWarning):
        return DevKeyFileKeySource(IssuerKeySet({k: bytes(16) for k in demo_key_set().masters}))


def test_read_and_authenticate(insert: Insert, open_session: Callable[..., CardSession]) -> None:
    with insert(card_os(3)):
        session = open_session()
        assert session.info.interface == "contact" and session.transport.protocol in ("T0", "T1")
        basic = flows.read_basic(session)
        assert basic.to_dict()["card_number"] == "X00000019"
        holder = flows.read_holder(session)
        assert holder.ssn == "110102197305211008" and holder.ethnicity_text == "汉族"
        fields = flows.read_card_bas(session).split("|")
        assert fields[1] == holder.ssn and fields[9] == "110102000001"
        assert flows.authenticate_card(session).sm2 is True
        with pytest.raises(CardNotGenuine):
            flows.authenticate_card(session, key_source=wrong_keys())
        status = flows.card_status(session)
        assert status.life_cycle is LifeCycle.PERSONALISED and status.key("IAK").tries_left == 5  # type: ignore[union-attr]


def test_contactless_and_older_generations(insert: Insert, open_session: Callable[..., CardSession]) -> None:
    with insert(card_os(3, interface="contactless")):
        session = open_session()
        assert session.info.interface == "contactless"
        assert flows.read_holder(session).name == "张三"
    for generation, ssn in ((2, "110105196209152006"), (1, "110106199002283017")):
        with insert(card_os(generation)):
            session = open_session()
            assert session.generation == generation
            assert flows.read_holder(session).ssn == ssn
            assert flows.authenticate_card(session).sm2 is None


def test_pin_lockout_unblock_reset_change(insert: Insert, open_session: Callable[..., CardSession]) -> None:
    with insert(card_os(3)):
        session = open_session()
        assert flows.pin_status(session).to_dict() == {"state": "initial", "retries_left": 3, "max_tries": 3}
        for expected in (2, 1, 0):
            with pytest.raises(PinError) as info:
                flows.verify_pin(session, "000000")
            assert info.value.retries_left == expected and info.value.national_code == -51
        with pytest.raises(PinBlocked):
            flows.verify_pin(session, INITIAL)
        assert flows.pin_status(session).state == "blocked"
        assert flows.unblock_pin(session).retries_left == 3
        with pytest.raises(PinEntryError) as initial_use:
            flows.verify_pin(session, INITIAL, for_transaction=True)
        assert initial_use.value.national_code == -35
        with pytest.raises(PinEntryError) as reuse:
            flows.change_pin(session, INITIAL, INITIAL)
        assert reuse.value.national_code == -36
        flows.change_pin(session, INITIAL, "135790")
        flows.verify_pin(session, "135790", for_transaction=True)
        assert flows.reset_pin(session).status.state == "initial"
        flows.verify_pin(session, INITIAL)
        assert flows.reset_pin(session, new_pin="246801").status.state == "ok"
        session.close()
        again = open_session()
        assert not flows.pin_status(again).verified
        flows.verify_pin(again, "246801")


def test_wrong_external_auth_key_decrements_the_counter(
    insert: Insert, open_session: Callable[..., CardSession]
) -> None:
    with insert(card_os(3)):
        session = open_session()
        with pytest.raises(AuthenticationFailed) as info:
            flows.read_holder(session, key_source=wrong_keys())
        assert info.value.retries_left == 4 and info.value.sw == 0x63C4
        assert flows.card_status(session).key("RK").tries_left == 4  # type: ignore[union-attr]


def test_life_cycle_and_blocked_application_refuses_reads(
    insert: Insert, open_session: Callable[..., CardSession]
) -> None:
    with insert(card_os(3)):
        session = open_session()
        assert flows.activate(session).after is LifeCycle.ACTIVE
        assert flows.block(session).after is LifeCycle.TEMPORARILY_BLOCKED
        with pytest.raises(ApplicationBlocked) as refused:
            flows.read_holder(session)
        assert refused.value.sw == 0x6A81
        session.close()
        blocked = open_session()
        assert blocked.info.application_blocked and flows.read_basic(blocked).application_blocked
        with pytest.raises(ApplicationBlocked):
            flows.read_generic(blocked, "3F00EF06|08|$")
        assert flows.unblock(blocked).after is LifeCycle.ACTIVE
        assert flows.block(blocked, "permanent").after is LifeCycle.PERMANENTLY_BLOCKED
        assert flows.card_status(blocked).life_cycle is LifeCycle.PERMANENTLY_BLOCKED


def test_generic_read_write(insert: Insert, open_session: Callable[..., CardSession]) -> None:
    with insert(card_os(3)):
        session = open_session()
        info = f"{session.card_id}|X00000019|"
        flows.write_generic(session, "3F00EF07|21|$", "13512345678|", card_info=info)
        assert (
            flows.read_generic(session, "3F00EF07|21|23|$", card_info=info).national()
            == "13512345678|100032|"
        )


def test_hsm_steps_over_pcsc(insert: Insert, open_session: Callable[..., CardSession]) -> None:
    hsm = SoftwareHsm(demo_key_set())
    with insert(card_os(3)):
        session = open_session(key_source=None)
        conversation = HsmConversation(lambda keys: flows.read_card_bas(session, key_source=keys))
        step = conversation.start()
        assert step.request is not None
        done = conversation.answer(hsm.process(step.request))
        assert done.done and done.result is not None and done.result.split("|")[4] == "张三"


def test_wrong_card_no_card_and_removed_card(
    insert: Insert, open_session: Callable[..., CardSession], card_reader: str
) -> None:
    with pytest.raises(NoCardError) as none:
        open_session()
    assert none.value.national_code == -2
    with insert(ForeignCard()):
        with pytest.raises(WrongCardType) as wrong:
            open_session()
        assert wrong.value.national_code == -1
        # the refused card was released: the reader is not left "in use" by this process
        assert next(r for r in list_readers() if r.name == card_reader).state == "present"
    wrapper = TearingCard(card_os(3))
    with insert(wrapper):
        session = open_session()
        wrapper.arm(0xB2, execute=False)
        with pytest.raises(CardRemovedError) as removed:
            flows.read_holder(session)
        assert removed.value.national_code == -2 and not isinstance(removed.value, TornOperation)
        assert session.journal.last("card.read_holder").national_code == -2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("operation", "ins", "flow", "check"),
    [
        (
            "pin.change",
            0x5E,
            lambda s: flows.change_pin(s, INITIAL, "135790"),
            lambda s: flows.pin_status(s).state == "ok",
        ),
        (
            "pin.reset",
            0x5E,
            lambda s: flows.reset_pin(s, new_pin="246801"),
            lambda s: flows.pin_status(s).state == "ok",
        ),
        ("card.activate", 0x44, flows.activate, lambda s: s.life_cycle() is LifeCycle.ACTIVE),
    ],
)
def test_tear_is_reported_and_the_next_session_is_consistent(
    tmp_path: Path,
    insert: Insert,
    open_session: Callable[..., CardSession],
    operation: str,
    ins: int,
    flow: Callable[[CardSession], object],
    check: Callable[[CardSession], bool],
) -> None:
    _, journal = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    hook = RegistryJournal(journal, terminal="BJ-T-0001", operator="op-001")
    wrapper = TearingCard(card_os(3))
    with insert(wrapper):
        session = open_session(journal=hook)
        wrapper.arm(ins, execute=True)
        with pytest.raises(TornOperation) as torn:
            flow(session)
        assert torn.value.operation == operation and torn.value.national_code == -2
        assert torn.value.entry_id is not None
        assert journal.entry(torn.value.entry_id).state == "torn"
    with insert(wrapper):
        fresh = open_session(journal=hook)
        resolution = flows.resolve_torn(fresh)
        assert [(e.operation, e.outcome) for e in resolution.entries] == [(operation, "applied")]
        assert journal.entry(torn.value.entry_id).state == "resolved"
        assert check(fresh)
        assert journal.incomplete(fresh.card_id) == []
    journal.close()


def test_tear_before_execution_is_not_applied(
    insert: Insert, open_session: Callable[..., CardSession]
) -> None:
    journal = MemoryJournal()
    wrapper = TearingCard(card_os(3))
    with insert(wrapper):
        session = open_session(journal=journal)
        wrapper.arm(0x44, execute=False)
        with pytest.raises(TornOperation):
            flows.activate(session)
    with insert(wrapper):
        fresh = open_session(journal=journal)
        (outcome,) = flows.resolve_torn(fresh).entries
        assert outcome.outcome == "not_applied" and fresh.life_cycle() is LifeCycle.PERSONALISED


def test_psam_missing_over_pcsc(pcsc_stack: object, insert: Insert) -> None:
    from emulator.stack import PcscStack

    assert isinstance(pcsc_stack, PcscStack)
    with pytest.raises(KeySourceError) as none:
        PsamKeySource.open(pcsc_stack.reader_for_slot(6))
    assert none.value.national_code == -2201
    with insert(card_os(3), slot=6):
        with pytest.raises(KeySourceError) as not_psam:
            PsamKeySource.open(pcsc_stack.reader_for_slot(6))
        assert not_psam.value.national_code == -2201


def test_session_recovers_after_another_application_reset_the_card(
    insert: Insert, open_session: Callable[..., CardSession]
) -> None:
    with insert(card_os(3)):
        first = open_session()
        flows.verify_pin(first, INITIAL)
        assert flows.pin_status(first).verified
        other = open_session()  # another application changes the card's state:
        flows.verify_pin(other, INITIAL)
        other.close()  # so its disconnect resets the card
        status = flows.pin_status(first)
        assert not status.verified and status.state == "initial"
        assert flows.read_basic(first).card_number == "X00000019"


def test_a_reading_session_leaves_the_card_as_it_found_it(
    insert: Insert, open_session: Callable[..., CardSession]
) -> None:
    # A session that only selects and reads does not reset the card at its end
    # (a reset costs a physical card a new ATR); one that verified a PIN does.
    with insert(card_os(3)):
        first = open_session()
        flows.verify_pin(first, INITIAL)
        reader = open_session()
        assert flows.read_basic(reader).card_number == "X00000019"
        flows.read_holder(reader)  # external authentication: not a reading command
        reader.close()
        assert not flows.pin_status(first).verified  # the holder read reset the card
        flows.verify_pin(first, INITIAL)
        reader = open_session()
        flows.read_basic(reader)
        reader.close()
        assert flows.pin_status(first).verified  # a basic read left it as it was
        first.close()
        assert not flows.pin_status(open_session()).verified
