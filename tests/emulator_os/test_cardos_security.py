"""GET CHALLENGE, EXTERNAL AUTHENTICATE, INTERNAL AUTHENTICATE and key counters."""

from __future__ import annotations

import secrets

import pytest
from cardos_helpers import card_key, challenge, cryptogram, external_auth, make_card, sw_of, tx

from card_model.keys import KeyRole
from card_model.store import MemoryStore
from emulator.card_os.security import SM2_IA_PREFIX
from sm_crypto.sm2 import Sm2PublicKey


@pytest.mark.parametrize("length", [4, 8, 16])
def test_get_challenge_lengths(length: int) -> None:
    card = make_card()
    first = challenge(card, length)
    second = challenge(card, length)
    assert first != second


@pytest.mark.parametrize(
    ("apdu", "sw"), [("0084000005", 0x6700), ("0084000000", 0x6700), ("0084010008", 0x6A86)]
)
def test_get_challenge_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw


def test_gen2_challenge_at_most_one_block() -> None:
    card = make_card(2)
    assert sw_of(card, "0084000010") == 0x6700
    assert len(challenge(card, 8)) == 8


def test_external_auth_without_challenge_6984() -> None:
    card = make_card()
    crypt = bytes(16)
    assert sw_of(card, "0082000310" + crypt.hex()) == 0x6984


def test_challenge_is_single_use() -> None:
    card = make_card()
    ch = challenge(card, 8)
    crypt = cryptogram(card, KeyRole.RK, ch)
    assert sw_of(card, "80CADF0100") == 0x9000  # any command consumes it
    assert sw_of(card, "0082000310" + crypt.hex()) == 0x6984
    ch = challenge(card, 8)
    crypt = cryptogram(card, KeyRole.RK, ch)
    assert sw_of(card, "0082000310" + crypt.hex()) == 0x9000
    assert sw_of(card, "0082000310" + crypt.hex()) == 0x6984  # used up by the success too


def test_even_a_failing_command_consumes_the_challenge() -> None:
    card = make_card()
    ch = challenge(card, 8)
    assert sw_of(card, "00FF0000") == 0x6D00
    assert sw_of(card, "0082000310" + cryptogram(card, KeyRole.RK, ch).hex()) == 0x6984


def test_wrong_cryptogram_counts_down_then_locks_and_persists() -> None:
    store = MemoryStore()
    card = make_card(store=store)
    for left in (4, 3, 2, 1, 0):
        challenge(card, 8)
        assert sw_of(card, "0082000310" + secrets.token_hex(16)) == 0x63C0 | left
        assert card.image.keys[3].tries_left == left
    assert len(store.commits) == 5  # each failure committed before the answer
    assert external_auth(card) == 0x6983  # locked: even the right cryptogram
    assert sw_of(card, "00B2083400") == 0x6982


def test_success_restores_the_key_counter() -> None:
    store = MemoryStore()
    card = make_card(store=store)
    challenge(card, 8)
    assert sw_of(card, "0082000310" + secrets.token_hex(16)) == 0x63C4
    assert external_auth(card) == 0x9000
    assert card.image.keys[3].tries_left == 5
    assert len(store.commits) == 2
    assert external_auth(card) == 0x9000
    assert len(store.commits) == 2  # nothing changed: nothing written


def test_failed_auth_drops_an_earlier_success_of_that_key() -> None:
    card = make_card()
    assert external_auth(card) == 0x9000
    challenge(card, 8)
    assert sw_of(card, "0082000310" + secrets.token_hex(16)) == 0x63C4
    assert sw_of(card, "00B2083400") == 0x6982


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("008200" + "0B10" + "00" * 16, 0x6A88),  # no key 0B
        ("008200" + "0410" + "00" * 16, 0x6985),  # AMK is not an external-auth key
        ("008200" + "0308" + "00" * 8, 0x6700),  # SM4 cryptogram is 16 bytes
        ("008201" + "0310" + "00" * 16, 0x6A86),
    ],
)
def test_external_auth_errors(apdu: str, sw: int) -> None:
    card = make_card()
    challenge(card, 8)
    assert sw_of(card, apdu) == sw


def test_gen2_external_auth_3des() -> None:
    card = make_card(2)
    ch = challenge(card, 8)
    crypt = card_key(card.image, KeyRole.RK).encrypt_ecb(ch)
    assert len(crypt) == 8
    assert sw_of(card, "0082000308" + crypt.hex()) == 0x9000


def test_gen1_has_no_reading_key() -> None:
    card = make_card(1)
    challenge(card, 8)
    assert sw_of(card, "0082000308" + "00" * 8) == 0x6A88


@pytest.mark.parametrize("generation", [3, 2, 1])
def test_internal_authenticate_symmetric(generation: int) -> None:
    card = make_card(generation, interface="contact")
    size = 16 if generation == 3 else 8
    r = secrets.token_bytes(size)
    data, sw = tx(card, bytes((0x00, 0x88, 0x00, 0x01, size)) + r + b"\x00")
    assert sw == 0x9000
    assert data == card_key(card.image, KeyRole.IAK).encrypt_ecb(r)


def test_internal_authenticate_t0_61xx() -> None:
    card = make_card()
    r = secrets.token_bytes(16)
    assert tx(card, "0088000110" + r.hex()) == (b"", 0x6110)
    data, sw = tx(card, "00C0000010")
    assert sw == 0x9000 and data == card_key(card.image, KeyRole.IAK).encrypt_ecb(r)


def test_internal_authenticate_sm2_signature_verifies() -> None:
    card = make_card()
    public, _ = tx(card, "804A010041")
    r = secrets.token_bytes(32)
    signature, sw = tx(card, "0088800020" + r.hex() + "00")
    assert sw == 0x9000 and len(signature) == 64
    Sm2PublicKey.from_bytes(public).verify(signature, SM2_IA_PREFIX + r)


@pytest.mark.parametrize(
    ("generation", "apdu", "sw"),
    [
        (3, "0088000108" + "00" * 8, 0x6700),
        (3, "0088000310" + "00" * 16, 0x6985),  # RK is not an internal-auth key
        (3, "0088000C10" + "00" * 16, 0x6A88),
        (3, "0088400110" + "00" * 16, 0x6A86),
        (3, "0088800010" + "00" * 16, 0x6700),  # SM2 takes 32 random bytes
        (3, "0088800120" + "00" * 32, 0x6A86),
        (2, "0088800020" + "00" * 32, 0x6A86),  # no SM2 on gen 2
    ],
)
def test_internal_authenticate_errors(generation: int, apdu: str, sw: int) -> None:
    assert sw_of(make_card(generation), apdu) == sw
