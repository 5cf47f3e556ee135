"""The card OS behind apdu's in-process transport and protocol layer."""

from __future__ import annotations

import pytest
from cardos_helpers import LocalMac, card_key, make_card

from apdu.command import CommandApdu
from apdu.errors import PinError, SecurityStatusNotSatisfied
from apdu.inprocess import InProcessTransport
from apdu.protocol import ApduProtocol
from apdu.sm import SecureChannel
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle

SSSE = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")


def protocol_for(card: object) -> ApduProtocol:
    transport = InProcessTransport(card)  # type: ignore[arg-type]
    transport.connect()
    return ApduProtocol(transport)


def test_select_through_protocol_follows_61xx() -> None:
    card = make_card()
    proto = protocol_for(card)
    answer = proto.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, SSSE))
    assert answer.sw == 0x9000 and answer.data.startswith(b"\x6f")


def test_wrong_le_resent_by_protocol() -> None:
    proto = protocol_for(make_card())
    answer = proto.send(CommandApdu(0x00, 0xB2, 0x07, 0x2C, le=2))
    assert answer.data[2:] == b"X00000019"


def test_errors_map_to_project_exceptions() -> None:
    proto = protocol_for(make_card())
    with pytest.raises(SecurityStatusNotSatisfied):
        proto.send(CommandApdu(0x00, 0xB2, 0x08, 0x34, le=256))
    with pytest.raises(PinError) as info:
        proto.send(CommandApdu(0x00, 0x20, 0x00, 0x01, bytes.fromhex("000000")))
    assert info.value.retries_left == 2


def test_secure_channel_activates() -> None:
    card = make_card()
    proto = protocol_for(card)
    channel = SecureChannel(proto, LocalMac(card_key(card.image, KeyRole.AMK)))
    assert channel.send(CommandApdu(0x80, 0x44, 0x00, 0x00)).sw == 0x9000
    assert card.image.life_cycle is LifeCycle.ACTIVE


def test_disconnect_powers_off_and_clears_session() -> None:
    card = make_card()
    transport = InProcessTransport(card)
    transport.connect()
    card.session.pin_verified = True
    transport.disconnect()
    assert card.session.pin_verified is False
