"""Card detection and session behaviour in process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from terminal_cards import FOREIGN_ATR, ForeignCard, card_os, inprocess_session, psam_source

from apdu.errors import CardRemovedError, CardResetError, KeySourceError, NoCardError, WrongCardType
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_psam_image
from card_model.lifecycle import LifeCycle
from emulator.psam import PsamCard
from terminal import flows
from terminal.journal_hook import MemoryJournal
from terminal.session import CardSession, generation_for_version


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_detects_generation_and_profile(generation: int) -> None:
    session, _, _ = inprocess_session(card_os(generation))
    info = session.info
    assert info.generation == generation and info.profile_name == f"gen{generation}"
    assert session.profile.generation == generation
    assert info.spec_version == f"{generation}.00"
    assert len(session.card_id) == 32 and info.factor == bytes.fromhex(session.card_id)[8:]
    assert f"gen{generation}" in repr(session)


def test_version_table() -> None:
    assert generation_for_version("3.00") == (3, "gen3")
    assert generation_for_version("4.00") is None


def test_foreign_card_is_wrong_card_type() -> None:
    session = CardSession(InProcessTransport(ForeignCard()))
    with pytest.raises(WrongCardType) as info:
        session.connect()
    assert info.value.national_code == -1 and info.value.sw == 0x6A82
    assert info.value.to_dict()["error"] == "wrong_card_type"
    assert not session.connected


def test_psam_is_not_a_social_security_card() -> None:
    with pytest.raises(WrongCardType, match="PSAM"):
        CardSession(InProcessTransport(PsamCard(demo_psam_image()))).connect()


def test_terminated_card_is_refused_with_its_sw() -> None:
    with pytest.raises(WrongCardType) as info:
        inprocess_session(card_os(3, life_cycle=LifeCycle.CARD_BLOCKED))
    assert info.value.sw == 0x6A81


class _NoEf05:
    def __init__(self) -> None:
        self.inner = card_os(3)

    def atr(self) -> bytes:
        return self.inner.atr()

    def process(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xB2:
            return bytes.fromhex("6A82")
        return self.inner.process(apdu)


def test_unreadable_identification_is_wrong_card_type() -> None:
    with pytest.raises(WrongCardType, match="EF05"):
        CardSession(InProcessTransport(_NoEf05())).connect()


class _ResetBeforeDetection(InProcessTransport):
    """A transport whose first ``resets`` APDUs meet a card another
    application has just reset (pcsc-lite: W_RESET_CARD or PROTO_MISMATCH)."""

    def __init__(self, resets: int) -> None:
        super().__init__(card_os(3))
        self.resets = resets
        self.reconnects = 0

    def transmit(self, apdu: bytes) -> bytes:
        if self.resets:
            self.resets -= 1
            raise CardResetError("SCardTransmit(r): SCARD_E_PROTO_MISMATCH")
        return super().transmit(apdu)

    def reconnect(self, reset: bool = False) -> None:
        self.reconnects += 1
        self.reset_at_transaction = False
        super().reconnect(reset)

    reset_at_transaction = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.reset_at_transaction:
            raise CardResetError("SCardBeginTransaction(r): SCARD_W_RESET_CARD")
        with super().transaction():
            yield


def test_a_reset_before_detection_reconnects_and_detects() -> None:
    transport = _ResetBeforeDetection(resets=1)
    session = CardSession(transport)
    info = session.connect()
    assert transport.reconnects == 1
    assert info.generation == 3 and len(session.card_id) == 32


def test_a_card_reset_again_after_the_reconnect_is_an_error() -> None:
    transport = _ResetBeforeDetection(resets=2)
    session = CardSession(transport)
    with pytest.raises(CardResetError):
        session.connect()
    assert transport.reconnects == 1 and session._info is None


@pytest.mark.parametrize(("holder", "same"), [(None, True), ("x_long_name", False)])
def test_a_reset_between_flows_goes_on_only_with_the_same_card(holder: str | None, same: bool) -> None:
    transport = _ResetBeforeDetection(resets=0)
    session = CardSession(transport)
    first = session.connect().card_id
    transport.insert(card_os(3, holder=holder))
    transport.reset_at_transaction = True
    if same:
        with session.transaction():
            assert session.info.card_id == first
    else:
        with pytest.raises(CardRemovedError, match="another card"), session.transaction():
            pass
        assert session._info is None
    assert transport.reconnects == 1


def test_empty_reader_is_no_card() -> None:
    with pytest.raises(NoCardError) as info:
        CardSession(InProcessTransport(None)).connect()
    assert info.value.national_code == -2


def test_card_removed_mid_read_is_a_clear_error_and_journalled() -> None:
    journal = MemoryJournal()
    session, _, wrapper = inprocess_session(
        card_os(3), key_source=psam_source(), journal=journal, tearing=True
    )
    assert wrapper is not None
    wrapper.arm(0xB2, execute=False)
    with pytest.raises(CardRemovedError) as info:
        flows.read_holder(session)
    assert info.value.national_code == -2
    assert type(info.value) is CardRemovedError
    entry = journal.last("card.read_holder")
    assert entry.state == "completed" and entry.result == "failed" and entry.national_code == -2


def test_keys_need_a_key_source() -> None:
    session, _, _ = inprocess_session(card_os(3))
    with pytest.raises(KeySourceError) as info:
        session.keys()
    assert info.value.national_code == -2201


def test_session_context_manager_resets_the_card() -> None:
    card = card_os(3)
    transport = InProcessTransport(card)
    with CardSession(transport, key_source=psam_source()) as session:
        flows.verify_pin(session, "211008")
        assert flows.pin_status(session).verified
    assert not transport.connected
    with CardSession(transport) as again:
        assert not flows.pin_status(again).verified


def test_foreign_atr_constant_is_not_an_ssc() -> None:
    from terminal.readers import is_ssc_atr

    assert not is_ssc_atr(FOREIGN_ATR)
    assert is_ssc_atr(card_os(3).atr())
