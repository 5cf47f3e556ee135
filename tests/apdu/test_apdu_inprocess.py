"""The in-process transport (direct attachment to an emulated card)."""

from __future__ import annotations

import pytest
from apdu_fakes import FunctionCard

from apdu.command import CommandApdu
from apdu.errors import CardMuteError, CardRemovedError, NoCardError, TransportError
from apdu.inprocess import InProcessTransport
from apdu.protocol import ApduProtocol
from apdu.transport import Transport


def echo(apdu: bytes) -> bytes:
    return apdu[5:] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


def test_is_a_transport() -> None:
    transport: Transport = InProcessTransport(FunctionCard(echo))  # checked by mypy
    transport.connect()
    assert transport.connected


def test_connect_transmit_disconnect() -> None:
    card = FunctionCard(echo)
    t = InProcessTransport(card, reader="Virtual", protocol="T1")
    assert not t.connected
    t.connect()
    assert card.powered and t.connected and t.reader == "Virtual" and t.protocol == "T1"
    assert t.atr == bytes.fromhex("3B6A0000424A5353433300039000")
    assert t.transmit(bytes.fromhex("00D6000002AABB")) == bytes.fromhex("AABB9000")
    with t.transaction(), t.transaction():
        assert t.transmit(bytes.fromhex("00B0000000")) == b"\x90\x00"
    t.reconnect(reset=True)
    assert card.resets == 1
    t.disconnect()
    assert not card.powered and not t.connected
    with pytest.raises(NoCardError):
        _ = t.atr


def test_no_card() -> None:
    t = InProcessTransport()
    with pytest.raises(NoCardError):
        t.connect()
    with pytest.raises(NoCardError):
        t.transmit(b"\x00\xb0\x00\x00\x00")


def test_removed_mid_session() -> None:
    t = InProcessTransport(FunctionCard(echo))
    t.connect()
    t.remove()
    with pytest.raises(CardRemovedError) as info:
        ApduProtocol(t).send(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256))
    assert info.value.national_code == -2
    with pytest.raises(CardRemovedError):
        t.reconnect()
    t.insert(FunctionCard(echo))
    t.connect()
    assert t.transmit(b"\x00\xb0\x00\x00\x00") == b"\x90\x00"


def test_transmit_before_connect() -> None:
    with pytest.raises(TransportError):
        InProcessTransport(FunctionCard(echo)).transmit(b"\x00\xb0\x00\x00")


def test_mute_card() -> None:
    t = InProcessTransport(FunctionCard(lambda apdu: b""))
    t.connect()
    with pytest.raises(CardMuteError):
        t.transmit(b"\x00\xb0\x00\x00")
    with pytest.raises(CardMuteError):
        InProcessTransport(FunctionCard(echo, atr="")).connect()


def test_card_without_power_methods() -> None:
    class Minimal:
        def atr(self) -> bytes:
            return b"\x3b\x00"

        def process(self, apdu: bytes) -> bytes:
            return b"\x6d\x00"

    t = InProcessTransport(Minimal())
    t.connect()
    assert t.transmit(b"\x00\x00\x00\x00") == b"\x6d\x00"
    t.reconnect(reset=True)
    t.disconnect()
