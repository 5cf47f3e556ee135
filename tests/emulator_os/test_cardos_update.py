"""UPDATE RECORD under secure messaging (EF07, maintenance key)."""

from __future__ import annotations

import pytest
from cardos_helpers import external_auth, make_card, sm_apdu, sm_send, sw_of, tx

from apdu.elements import decode_file
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.store import MemoryStore


def update(card: object, tag: int, value: bytes, p2: int = 0x3C, role: KeyRole = KeyRole.AMK) -> int:
    record = bytes((tag, len(value))) + value
    return sm_send(card, role, 0x04, 0xDC, tag, p2, record)[1]  # type: ignore[arg-type]


def test_update_address_and_read_back() -> None:
    store = MemoryStore()
    card = make_card(store=store)
    address = "北京市海淀区新地址2号".encode("gbk")
    assert update(card, 0x20, address) == 0x9000
    assert len(store.commits) == 1
    external_auth(card)
    data, sw = tx(card, "00B2203C00")
    assert sw == 0x9000
    assert decode_file("EF07", data)["address"] == "北京市海淀区新地址2号"


def test_update_creates_an_absent_record_on_current_ef() -> None:
    card = make_card(2)
    assert sw_of(card, "00A4000002EF07") == 0x9000
    assert update(card, 0x21, b"13900000000", p2=0x04) == 0x9000
    external_auth(card)
    assert decode_file("EF07", tx(card, "00B2210400")[0])["phone"] == "13900000000"


def test_wrong_mac_counts_against_the_maintenance_key() -> None:
    card = make_card()
    assert update(card, 0x21, b"13900000000", role=KeyRole.RK) == 0x6988
    assert card.image.keys[KeyRole.AMK.kid].tries_left == 4
    apdu = bytearray(sm_apdu(card, KeyRole.AMK, 0x04, 0xDC, 0x21, 0x3C, bytes((0x21, 2)) + b"13"))
    apdu[7] ^= 0xFF  # data changed after the MAC
    assert sw_of(card, bytes(apdu)) == 0x6988
    assert card.image.keys[KeyRole.AMK.kid].tries_left == 3


@pytest.mark.parametrize(
    ("tag", "p2", "record", "sw"),
    [
        (0x21, 0x3C, bytes((0x22, 2)) + b"13", 0x6A80),  # tag differs from P1
        (0x21, 0x3C, bytes((0x21, 5)) + b"13", 0x6A80),  # length byte wrong
        (0x21, 0x3C, bytes((0x21, 21)) + b"1" * 21, 0x6A80),  # longer than 20
        (0x23, 0x3C, bytes((0x23, 5)) + b"10003", 0x6A80),  # postcode is exactly 6 digits
        (0x24, 0x3C, bytes((0x24, 1)) + b"1", 0x6A83),  # no such record in EF07
        (0x03, 0x2C, bytes((0x03, 4)) + b"9.99", 0x6982),  # EF05 never updatable
        (0x08, 0x34, bytes((0x08, 1)) + b"1", 0x6982),  # EF06 neither
        (0x21, 0x3D, bytes((0x21, 2)) + b"13", 0x6A86),  # P2 mode 5
        (0x01, 0x6C, bytes((0x01, 1)) + b"1", 0x6981),  # EF0D is binary
    ],
)
def test_update_record_errors(tag: int, p2: int, record: bytes, sw: int) -> None:
    card = make_card()
    assert sm_send(card, KeyRole.AMK, 0x04, 0xDC, tag, p2, record)[1] == sw


def test_update_without_challenge_and_short_data() -> None:
    card = make_card()
    assert sw_of(card, "04DC213C0400000000") == 0x6984
    tx(card, "0084000004")
    assert sw_of(card, "04DC213C03000000") == 0x6700


def test_update_refused_when_temporarily_blocked() -> None:
    card = make_card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    assert update(card, 0x21, b"13900000000") == 0x6A81
