"""Personalisation of a blank stock card (docs/card-os.md §11): WRITE KEY of keys
and the PIN, personalisation writes, SM2 key pairs, GET DATA DF05, END OF
PERSONALISATION and the PSAM's WRITE KEY bodies."""

from __future__ import annotations

import pytest
from cardos_helpers import challenge, external_auth, sm_send, sw_of, tx
from cardos_personalise import (
    end_personalisation,
    generate,
    load_all_keys,
    load_key,
    load_pin,
    progress,
    raw_card_key,
    sm2_complete,
    stock_card,
    write_binary,
    write_key_apdu,
    write_records,
)

from apdu.elements import encode_pin
from card_model.demo import demo_card_image, demo_psam_image
from card_model.keyload import TARGET_KEY, TARGET_PIN
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.store import MemoryStore
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from sm_crypto.envelope import seal_private_key
from sm_crypto.sm2 import Sm2PrivateKey

AID = "A00000000386980701"


def test_stock_card_is_blank_with_only_the_transport_key() -> None:
    card = stock_card()
    assert tx(card, "80CADF0100") == (b"\x00", 0x9000)
    data, sw = tx(card, "00B2012D00")
    assert sw == 0x9000 and [data[0]] == [0x01] and data[1] == 16
    assert sw_of(card, "00B2052C00") == 0x6A83
    assert progress(card) == (1 << 0x0A, 0x00)
    assert tx(card, "80CADF0200") == (bytes((0, 3, 0)), 0x9000)
    assert sw_of(card, "0020000103211008") == 0x6985
    assert external_auth(card, KeyRole.RK) == 0x6A88
    assert end_personalisation(card) == 0x6A88  # no AMK yet to MAC with


def test_write_key_loads_keys_and_they_work() -> None:
    store = MemoryStore()
    card = stock_card(store=store)
    assert load_key(card, KeyRole.RK) == 0x9000
    assert len(store.commits) == 1
    assert external_auth(card, KeyRole.RK) == 0x9000
    load_all_keys(card)
    bitmap, _ = progress(card)
    assert bitmap == sum(1 << kid for kid in range(1, 11))
    assert card.image.keys[KeyRole.AMK.kid].value == raw_card_key(card, KeyRole.AMK)
    # loading the same key again (a resumed issuance) is harmless
    assert load_key(card, KeyRole.AMK) == 0x9000


def test_write_key_errors() -> None:
    card = stock_card()
    apdu = write_key_apdu(card, TARGET_KEY, KeyRole.AMK.kid, raw_card_key(card, KeyRole.AMK))
    assert sw_of(card, apdu) == 0x9000
    assert sw_of(card, apdu) == 0x6984  # the challenge was consumed by the first send
    assert sw_of(card, bytes((0x80,)) + apdu[1:]) == 0x6982  # plain CLA
    bad = bytearray(write_key_apdu(card, TARGET_KEY, KeyRole.AMK.kid, raw_card_key(card, KeyRole.AMK)))
    bad[-1] ^= 1
    assert sw_of(card, bytes(bad)) == 0x6988
    assert card.image.keys[KeyRole.KTK.kid].tries_left == 4
    assert sw_of(card, write_key_apdu(card, 0x02, 0x04, bytes(16))) == 0x6A86
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, 0x1E, bytes(16))) == 0x6A88
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, KeyRole.KTK.kid, bytes(16))) == 0x6985
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, KeyRole.AMK.kid, bytes(8))) == 0x6A80
    assert card.image.keys[KeyRole.KTK.kid].tries_left == 5  # a good MAC restored the counter
    # a MAC made with another key than the card's KTK
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, 0x04, bytes(16), ktk=KeyRole.AMK)) == 0x6988


def test_write_key_only_while_blank() -> None:
    card = CardOS(demo_card_image())
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, 0x04, raw_card_key(card, KeyRole.AMK))) == 0x6985


def test_personalisation_writes_and_initialised_records() -> None:
    card = stock_card()
    load_all_keys(card)
    body = bytes((0x01, 16)) + card.image.card_id
    assert sm_send(card, KeyRole.AMK, 0x04, 0xDC, 0x01, 0x2C, body)[1] == 0x6982  # initialised
    write_records(card)
    _, flags = progress(card)
    assert flags & 0x20
    assert external_auth(card, KeyRole.RK) == 0x9000
    data, sw = tx(card, "00B2083400")
    assert sw == 0x9000 and data[2:] == b"110102197305211008"


def test_pin_load_needs_the_ssn_and_the_initial_rule() -> None:
    card = stock_card()
    load_all_keys(card)
    assert load_pin(card) == 0x6985  # no SSN in EF06 yet
    write_records(card)
    assert load_pin(card, "123456") == 0x6A80
    assert sw_of(card, write_key_apdu(card, TARGET_PIN, 0x02, encode_pin("211008"))) == 0x6A86
    assert sw_of(card, write_key_apdu(card, TARGET_PIN, 0x01, b"\x21\x10")) == 0x6700  # 4 digits
    assert load_pin(card) == 0x9000
    assert tx(card, "80CADF0200") == (bytes((3, 3, 1)), 0x9000)
    assert progress(card)[1] & 0x01


def test_sm2_encryption_key_import() -> None:
    card = stock_card()
    load_all_keys(card)
    stranger = Sm2PrivateKey.generate()
    envelope = seal_private_key(stranger.public_key(), Sm2PrivateKey.generate())
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, envelope)[1] == 0x6985  # no signature key
    assert sw_of(card, "804A020041") == 0x6A88
    public = generate(card)
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, envelope)[1] == 0x6A80  # sealed for another
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, envelope[:-1])[1] == 0x6700
    encrypt_key = Sm2PrivateKey.generate()
    good = bytearray(seal_private_key(public, encrypt_key))
    good[150] ^= 0x01
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, bytes(good))[1] == 0x6A80
    good[150] ^= 0x01
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, bytes(good))[1] == 0x9000
    assert tx(card, "804A020041") == (encrypt_key.public_key().to_bytes(), 0x9000)
    assert progress(card)[1] & 0x06 == 0x06


def test_end_of_personalisation_needs_everything() -> None:
    card = stock_card()
    load_all_keys(card)
    assert end_personalisation(card) == 0x6985
    write_records(card)
    assert end_personalisation(card) == 0x6985  # no PIN
    assert load_pin(card) == 0x9000
    assert end_personalisation(card) == 0x6985  # no SM2 material
    generate(card)
    assert end_personalisation(card) == 0x6985  # no certificates, no encryption key
    write_binary(card, 13, b"\x30\x82\x00\x02\x05\x00")
    assert end_personalisation(card) == 0x6985
    sm2_complete(card)
    assert progress(card)[1] == 0x3F
    assert end_personalisation(card) == 0x9000
    assert card.image.life_cycle is LifeCycle.PERSONALISED
    assert sw_of(card, write_key_apdu(card, TARGET_KEY, 0x04, raw_card_key(card, KeyRole.AMK))) == 0x6985
    assert sm_send(card, KeyRole.AMK, 0x04, 0xDC, 0x08, 0x34, b"\x08\x01X")[1] == 0x6982  # EF06 "never"
    assert sw_of(card, "0020000103211008") == 0x9000


def test_gen2_stock_card_is_personalised_with_3des() -> None:
    card = stock_card(generation=2)
    load_all_keys(card)
    write_records(card, "gen2")
    assert load_pin(card, "152006") == 0x9000
    assert end_personalisation(card) == 0x9000
    assert external_auth(card, KeyRole.RK) == 0x9000


def _psam() -> PsamCard:
    psam = PsamCard(demo_psam_image())
    assert tx(psam, "00A4040C09" + AID)[1] == 0x9000
    return psam


def _psam_body(psam: PsamCard, card: CardOS, kid: int, data: bytes) -> tuple[bytes, int]:
    assert tx(psam, bytes((0x80, 0x1A, 0x00, kid, 0x08)) + card.image.card_id[8:])[1] == 0x9000
    return tx(psam, bytes((0x80, 0xFA, 0x11, 0x00, len(data))) + data + b"\x00")


def test_psam_write_key_bodies_load_the_card() -> None:
    card = stock_card()
    psam = _psam()
    for role in (KeyRole.AMK, KeyRole.RK, KeyRole.IAK):
        iv = challenge(card).ljust(16, b"\x00")
        body, sw = _psam_body(psam, card, 0x0A, iv + bytes((TARGET_KEY, role.kid)))
        assert sw == 0x9000 and len(body) == 36
        assert sw_of(card, bytes((0x84, 0xD4, 0x00, role.kid, len(body))) + body) == 0x9000
    assert card.image.keys[KeyRole.IAK.kid].value == raw_card_key(card, KeyRole.IAK)
    iv = challenge(card).ljust(16, b"\x00")
    assert _psam_body(psam, card, 0x0A, iv + bytes((0x02, 0x04)))[1] == 0x6A86
    assert _psam_body(psam, card, 0x0A, iv + bytes((TARGET_KEY, 0x0A)))[1] == 0x6A88  # KTK itself
    assert _psam_body(psam, card, 0x0A, iv + bytes((TARGET_PIN, 0x01)) + b"\x12\x3a")[1] == 0x6A80
    assert _psam_body(psam, card, 0x0A, iv)[1] == 0x6700
    assert _psam_body(psam, card, 0x04, iv + bytes((TARGET_KEY, 0x03)))[1] == 0x6985  # AMK lacks "wrap"
    load_all_keys(card)
    write_records(card)
    iv = challenge(card).ljust(16, b"\x00")
    body, sw = _psam_body(psam, card, 0x0A, iv + bytes((TARGET_PIN, 0x01)) + encode_pin("211008"))
    assert sw == 0x9000 and len(body) == 20
    assert sw_of(card, bytes((0x84, 0xD4, 0x01, 0x01, len(body))) + body) == 0x9000


@pytest.mark.parametrize("tag", ["05", "FF"])
def test_get_data_personalisation_and_unknown_tag(tag: str) -> None:
    card = CardOS(demo_card_image())
    data, sw = tx(card, f"80CADF{tag}00")
    if tag == "05":
        assert sw == 0x9000 and data[4] == 0x3F and int.from_bytes(data[:4], "big") == 0x7FE
    else:
        assert sw == 0x6A88
