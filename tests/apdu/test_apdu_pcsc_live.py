"""PC/SC against a real pcscd with vpcd readers (session fixture ``pcsc_stack``
from tests/conftest.py) and virtual cards attached with emulator/vpcd.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from apdu_fakes import FunctionCard

from apdu import errors, pcsc
from apdu.command import CommandApdu
from apdu.pcsc import PcscTransport, ReaderState
from apdu.protocol import ApduProtocol
from emulator.vpcd import VpcdLink

S: Any = getattr(pcsc, "scard")  # noqa: B009 - pyscard is only imported by apdu/pcsc.py
ATR = "3B6A0000424A5353433300039000"


def t0_card(apdu: bytes) -> bytes:
    """A T=0 style card: SELECT answers 61xx, GET RESPONSE the FCI, READ
    RECORD with a wrong Le answers 6Cxx."""
    fci = bytes.fromhex("6F17840F7378312E73682EC9E7BBE1B1A3D5CFA5049F080103")
    record = bytes.fromhex("0304332E3030")
    if apdu[1] == 0xA4:
        return bytes([0x61, len(fci)])
    if apdu[1] == 0xC0:
        return fci + b"\x90\x00"
    if apdu[1] == 0xB2:
        le = apdu[4] if len(apdu) == 5 else 0
        if le not in (0, len(record)):
            return bytes([0x6C, len(record)])
        return record + b"\x90\x00"
    return b"\x6d\x00"


def wait_present(reader: str, present: bool, timeout: float = 10.0) -> ReaderState:
    deadline = time.monotonic() + timeout
    states = pcsc.reader_states([reader])
    while states[0].present != present:
        assert time.monotonic() < deadline, f"{reader}: card presence did not become {present}"
        change = pcsc.wait_for_change(states, 500)
        states = change.states if change is not None else pcsc.reader_states([reader])
    return states[0]


@pytest.fixture
def slot0(pcsc_stack: Any) -> Iterator[tuple[str, VpcdLink]]:
    reader = pcsc_stack.reader_for_slot(14)
    link = VpcdLink(FunctionCard(t0_card, atr=ATR), slot=14)
    link.insert()
    wait_present(reader, True)
    yield reader, link
    link.remove()
    wait_present(reader, False)


def test_list_readers(pcsc_stack: Any) -> None:
    readers = pcsc.list_readers()
    for name in pcsc_stack.readers:
        assert name in readers


def test_empty_slot_is_no_card(pcsc_stack: Any) -> None:
    reader = pcsc_stack.reader_for_slot(15)
    state = pcsc.reader_states([reader])[0]
    assert not state.present and state.atr in (None, b"")
    with pytest.raises(errors.NoCardError) as info:
        PcscTransport(reader).connect()
    assert info.value.national_code == -2


def test_unknown_reader(pcsc_stack: Any) -> None:
    with pytest.raises(errors.ReaderNotFoundError):
        PcscTransport("No Such Reader 99").connect()


def test_exchange_with_get_response_and_6c(slot0: tuple[str, VpcdLink]) -> None:
    reader, _ = slot0
    state = pcsc.reader_states([reader])[0]
    assert state.present and state.atr == bytes.fromhex(ATR)
    with PcscTransport(reader) as t:
        assert t.atr == bytes.fromhex(ATR) and t.protocol in ("T0", "T1")
        proto = ApduProtocol(t)
        with proto.transaction():
            fci = proto.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, b"sx1"))
            assert fci.data.startswith(b"\x6f\x17")
            rec = proto.send(CommandApdu(0x00, 0xB2, 0x03, 0x2C, le=16))
            assert rec.data == bytes.fromhex("0304332E3030")


def test_removed_mid_session(slot0: tuple[str, VpcdLink]) -> None:
    reader, link = slot0
    t = PcscTransport(reader)
    t.connect()
    link.remove()
    wait_present(reader, False)
    with pytest.raises(errors.NoCardError) as info:
        t.transmit(bytes.fromhex("00B2032C00"))
    assert isinstance(info.value, errors.CardRemovedError)
    assert not t.connected
    link.insert()
    wait_present(reader, True)


def test_reset_by_another_application(slot0: tuple[str, VpcdLink]) -> None:
    reader, _ = slot0
    first, second = (
        PcscTransport(reader, dispose="leave"),
        PcscTransport(reader, dispose="leave"),
    )
    first.connect()
    second.connect()
    second.reconnect(reset=True)
    with pytest.raises(errors.CardResetError):
        first.transmit(bytes.fromhex("00B2032C00"))
    first.reconnect()
    assert first.transmit(bytes.fromhex("00B2032C00")) == bytes.fromhex("0304332E30309000")
    first.disconnect()
    second.disconnect()


def test_sharing_violation(slot0: tuple[str, VpcdLink]) -> None:
    reader, _ = slot0
    hresult, ctx = S.SCardEstablishContext(S.SCARD_SCOPE_USER)
    assert hresult == S.SCARD_S_SUCCESS
    hresult, card, _active = S.SCardConnect(
        ctx, reader, S.SCARD_SHARE_EXCLUSIVE, S.SCARD_PROTOCOL_T0 | S.SCARD_PROTOCOL_T1
    )
    assert hresult == S.SCARD_S_SUCCESS
    try:
        assert pcsc.reader_states([reader])[0].exclusive
        with pytest.raises(errors.SharingViolationError) as info:
            PcscTransport(reader).connect()
        assert info.value.national_code == -11
    finally:
        S.SCardDisconnect(card, S.SCARD_LEAVE_CARD)
        S.SCardReleaseContext(ctx)


def test_wait_for_change_sees_insertion_and_removal(pcsc_stack: Any) -> None:
    reader = pcsc_stack.reader_for_slot(15)
    states = pcsc.reader_states([reader])
    assert not states[0].present
    assert pcsc.wait_for_change(states, 50) is None  # nothing happens: timeout
    link = VpcdLink(FunctionCard(t0_card, atr=ATR), slot=15)
    link.insert()
    try:
        assert wait_present(reader, True).atr == bytes.fromhex(ATR)
    finally:
        link.remove()
    wait_present(reader, False)
