"""The virtual PSAM against the card OS: the terminal's view of both slots."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cardos_helpers import card_key, challenge, make_card, sw_of, tx

from apdu.elements import encode_pin
from card_model.demo import demo_key_set, demo_psam_image
from card_model.keys import Algorithm, KeyRole
from card_model.psam_image import PsamImage
from card_model.store import CardStore
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from sm_crypto.padding import Padding

AID = "A00000000386980701"


def psam() -> PsamCard:
    card = PsamCard(demo_psam_image())
    assert card.atr() == bytes.fromhex("3B6A0000424A5053414D00019000")
    assert tx(card, "00A4040C09" + AID) == (b"", 0x9000)
    return card


def init(p: PsamCard, kid: int, card: CardOS) -> int:
    return sw_of(p, bytes((0x80, 0x1A, 0x00, kid, 0x08)) + card.image.card_id[8:])


def psam_get(p: PsamCard, apdu: bytes) -> tuple[bytes, int]:
    """Send a case-4 command the T=0 way and fetch the answer."""
    data, sw = tx(p, apdu)
    if sw & 0xFF00 == 0x6100:
        return tx(p, bytes((0x00, 0xC0, 0x00, 0x00, sw & 0xFF)))
    return data, sw


def test_terminal_number_and_select() -> None:
    p = PsamCard(demo_psam_image())
    assert tx(p, "00B0960006") == (bytes.fromhex("110102000001"), 0x9000)
    assert tx(p, "00B0960300") == (bytes.fromhex("000001"), 0x9000)
    assert tx(p, "00B0960008")[1] == 0x6282
    assert sw_of(p, "00B0960600") == 0x6B00
    assert sw_of(p, "00B0970000") == 0x6A82
    data, sw = psam_get(p, bytes.fromhex("00A4040009" + AID))
    assert sw == 0x9000 and data == bytes.fromhex("6F0B8409" + AID)
    assert sw_of(p, "00A4040009A00000000386980702") == 0x6A82


@pytest.mark.parametrize(("generation", "kid"), [(3, 0x03), (2, 0x23)])
def test_psam_external_auth_opens_ef06(generation: int, kid: int) -> None:
    card = make_card(generation)
    p = psam()
    assert init(p, kid, card) == 0x9000
    ch = challenge(card, 8)
    crypt, sw = psam_get(p, b"\x80\xfa\x00\x00\x08" + ch)
    assert sw == 0x9000
    assert sw_of(card, bytes((0x00, 0x82, 0x00, 0x03, len(crypt))) + crypt) == 0x9000
    assert sw_of(card, "00B2083400") == 0x9000


def test_psam_mac_drives_reload_pin() -> None:
    card = make_card()
    p = psam()
    assert init(p, 0x05, card) == 0x9000
    ch = challenge(card, 4)
    header = bytes.fromhex("845E000107")
    new_pin = encode_pin("864200")
    mac, sw = psam_get(
        p, bytes((0x80, 0xFA, 0x05, 0x00, 16 + len(header) + 3)) + ch.ljust(16, b"\0") + header + new_pin
    )
    assert sw == 0x9000 and len(mac) == 4
    assert sw_of(card, header + new_pin + mac) == 0x9000
    assert card.image.pin.value == "864200"


def test_psam_mac_3des_uses_retail_mac() -> None:
    card = make_card(2)
    p = psam()
    assert init(p, 0x26, card) == 0x9000
    ch = challenge(card, 4)
    header = bytes.fromhex("8424000104")
    mac, sw = psam_get(p, bytes((0x80, 0xFA, 0x05, 0x00, 16 + len(header))) + ch.ljust(16, b"\0") + header)
    assert sw == 0x9000
    assert mac == card_key(card.image, KeyRole.PUK).retail_mac(header, ch)
    assert sw_of(card, header + mac) == 0x9000


def test_psam_verifies_card_internal_authentication() -> None:
    card = make_card()
    p = psam()
    assert init(p, 0x01, card) == 0x9000
    r = secrets.token_bytes(16)
    answer, sw = tx(card, "0088000110" + r.hex() + "00")
    assert sw == 0x9000
    assert sw_of(p, b"\x80\xfa\x08\x00\x20" + r + answer) == 0x9000
    forged = bytes((answer[0] ^ 1,)) + answer[1:]
    assert sw_of(p, b"\x80\xfa\x08\x00\x20" + r + forged) == 0x6300
    assert sw_of(p, b"\x80\xfa\x08\x00\x10" + r) == 0x6700


def test_psam_key_usage_is_enforced() -> None:
    card = make_card()
    p = psam()
    assert init(p, 0x03, card) == 0x9000  # RK: ext only
    assert sw_of(p, b"\x80\xfa\x05\x00\x14" + bytes(20)) == 0x6985
    assert sw_of(p, b"\x80\xfa\x08\x00\x20" + bytes(32)) == 0x6985
    assert sw_of(p, b"\x80\xfa\x10\x00\x01\x03") == 0x6985
    assert init(p, 0x04, card) == 0x9000  # AMK: mac only
    assert sw_of(p, b"\x80\xfa\x00\x00\x08" + bytes(8)) == 0x6985


def test_psam_custom_usage_mask() -> None:
    image = PsamImage.from_key_set(demo_key_set(), "110102000009", usage={KeyRole.RK: ()})
    p = PsamCard(image)
    tx(p, "00A4040C09" + AID)
    assert init(p, 0x03, make_card()) == 0x9000
    assert sw_of(p, b"\x80\xfa\x00\x00\x08" + bytes(8)) == 0x6985


def test_psam_wrap_key_for_write_key() -> None:
    card = make_card()
    p = psam()
    assert init(p, 0x0A, card) == 0x9000
    wrapped, sw = psam_get(p, b"\x80\xfa\x10\x00\x01\x03")
    assert sw == 0x9000 and len(wrapped) == 32
    plain = card_key(card.image, KeyRole.KTK).decrypt_ecb(wrapped, Padding.ISO9797_M2)
    expected = demo_key_set().card_key(Algorithm.SM4, KeyRole.RK, card.image.card_id[8:])
    assert plain == bytes((16,)) + expected
    assert sw_of(p, b"\x80\xfa\x10\x00\x01\x0b") == 0x6A88
    assert sw_of(p, b"\x80\xfa\x10\x00\x02\x03\x04") == 0x6700


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("801A000108" + "00" * 8, 0x6985),  # before SELECT
        ("80FA000008" + "00" * 8, 0x6985),
    ],
)
def test_psam_needs_select(apdu: str, sw: int) -> None:
    assert sw_of(PsamCard(demo_psam_image()), apdu) == sw


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("80FA000008" + "00" * 8, 0x6985),  # no INIT yet
        ("801A000B08" + "00" * 8, 0x6A88),
        ("801A000104" + "00" * 4, 0x6700),
        ("801A010108" + "00" * 8, 0x6A86),
        ("80FA020008" + "00" * 8, 0x6A86),
        ("00FA000008" + "00" * 8, 0x6E00),
        ("80EE0000", 0x6D00),
        ("00C0000000", 0x6985),
        ("00A4080000", 0x6A86),
    ],
)
def test_psam_errors(apdu: str, sw: int) -> None:
    p = psam()
    assert sw_of(p, apdu) == sw


def test_psam_external_auth_lengths_and_reset() -> None:
    card = make_card()
    p = psam()
    init(p, 0x03, card)
    assert sw_of(p, b"\x80\xfa\x00\x00\x03" + bytes(3)) == 0x6700
    p.reset()
    assert sw_of(p, b"\x80\xfa\x00\x00\x08" + bytes(8)) == 0x6985  # reset: not selected


def test_psam_image_round_trip(tmp_path: Path) -> None:
    store = CardStore(tmp_path / "psam.json")
    image = demo_psam_image()
    store.commit(image)
    loaded = store.load_psam()
    assert loaded.to_dict() == image.to_dict()
    assert repr(loaded).find(image.keys[1].value.hex()) < 0
