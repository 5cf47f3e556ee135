"""VERIFY, CHANGE PIN, RELOAD PIN, PIN UNBLOCK."""

from __future__ import annotations

import pytest
from cardos_helpers import challenge, make_card, sm_apdu, sm_send, sw_of, tx

from apdu.elements import encode_pin
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.store import MemoryStore

INITIAL = "211008"  # last 6 of 110102197305211008


def verify(card: object, pin: str) -> int:
    return sw_of(card, "0020000103" + encode_pin(pin).hex())


def pin_state(card: object) -> bytes:
    data, sw = tx(card, "80CADF0200")
    assert sw == 0x9000
    return data


def test_verify_right_pin() -> None:
    card = make_card()
    assert sw_of(card, "00200001") == 0x63C3
    assert verify(card, INITIAL) == 0x9000
    assert sw_of(card, "00200001") == 0x9000
    assert pin_state(card) == bytes((3, 3, 0x03))  # initial + verified


def test_verify_countdown_block_and_status_spends_nothing() -> None:
    store = MemoryStore()
    card = make_card(store=store)
    assert verify(card, "000000") == 0x63C2
    assert sw_of(card, "00200001") == 0x63C2  # status: no try spent
    assert verify(card, "000000") == 0x63C1
    assert verify(card, "000000") == 0x63C0
    assert sw_of(card, "00200001") == 0x6983
    assert verify(card, INITIAL) == 0x6983
    assert len(store.commits) == 3
    assert pin_state(card)[0] == 0


def test_right_pin_restores_tries_and_wrong_one_clears_verified() -> None:
    card = make_card()
    assert verify(card, "123456") == 0x63C2
    assert verify(card, INITIAL) == 0x9000
    assert card.image.pin.tries_left == 3
    assert verify(card, "123456") == 0x63C2
    assert sw_of(card, "00200001") == 0x63C2


def test_verified_state_ends_with_reset() -> None:
    card = make_card()
    verify(card, INITIAL)
    card.reset()
    assert sw_of(card, "00200001") == 0x63C3


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("002000010412345678", 0x6700),  # 8 digits: wrong block size for 6-digit PINs
        ("002000010212 34".replace(" ", ""), 0x6700),
        ("00200001031234AB", 0x6A80),  # not BCD
        ("0020000203211008", 0x6A86),  # PIN id 02
        ("0020010103211008", 0x6A86),
    ],
)
def test_verify_errors(apdu: str, sw: int) -> None:
    card = make_card()
    assert sw_of(card, apdu) == sw
    assert card.image.pin.tries_left == 3


def change(card: object, old: str, new: str) -> int:
    return sw_of(card, "805E010107" + encode_pin(old).hex() + "FF" + encode_pin(new).hex())


def test_change_pin_clears_initial_flag() -> None:
    card = make_card()
    assert change(card, INITIAL, "135790") == 0x9000
    assert pin_state(card) == bytes((3, 3, 0x02))
    card.reset()
    assert verify(card, INITIAL) == 0x63C2
    assert verify(card, "135790") == 0x9000
    assert card.image.pin.initial is False


def test_change_pin_errors() -> None:
    card = make_card()
    assert change(card, "000000", "135790") == 0x63C2
    assert change(card, INITIAL, INITIAL) == 0x6A80
    assert sw_of(card, "805E010106211008135790") == 0x6A80  # no FF separator
    assert sw_of(card, "805E0201072110 08FF135790".replace(" ", "")) == 0x6A86
    assert sw_of(card, "805E01010821100800FF135790") == 0x6700
    assert card.image.pin.value == INITIAL


def test_change_pin_when_blocked() -> None:
    card = make_card()
    for _ in range(3):
        verify(card, "000000")
    assert change(card, INITIAL, "135790") == 0x6983


def reload(card: object, pin: str, p2: int = 0x01) -> tuple[bytes, int]:
    return sm_send(card, KeyRole.PRK, 0x84, 0x5E, 0x00, p2, encode_pin(pin))  # type: ignore[arg-type]


def test_reload_pin_chosen_and_initial() -> None:
    card = make_card()
    for _ in range(3):
        verify(card, "000000")
    assert reload(card, "864200") == (b"", 0x9000)
    assert pin_state(card) == bytes((3, 3, 0x00))
    assert verify(card, "864200") == 0x9000
    assert reload(card, INITIAL, 0x81) == (b"", 0x9000)
    assert pin_state(card) == bytes((3, 3, 0x01))  # initial, no longer verified
    assert verify(card, INITIAL) == 0x9000


def test_reload_initial_pin_must_be_the_ssn_rule() -> None:
    card = make_card()
    assert reload(card, "864200", 0x81)[1] == 0x6A80
    assert card.image.pin.value == INITIAL


def test_reload_pin_x_ssn_initial_pin() -> None:
    card = make_card(holder="x_long_name")
    assert card.image.pin.value == "121010"
    assert reload(card, "121010", 0x81)[1] == 0x9000


def test_reload_pin_wrong_mac_and_no_challenge() -> None:
    card = make_card()
    apdu = bytearray(sm_apdu(card, KeyRole.PRK, 0x84, 0x5E, 0x00, 0x01, encode_pin("864200")))
    apdu[-1] ^= 0x01
    assert sw_of(card, bytes(apdu)) == 0x6988
    assert card.image.keys[KeyRole.PRK.kid].tries_left == 4
    assert sw_of(card, bytes(apdu)) == 0x6984  # no challenge any more
    apdu = sm_apdu(card, KeyRole.PUK, 0x84, 0x5E, 0x00, 0x01, encode_pin("864200"))
    assert sw_of(card, apdu) == 0x6988  # MAC made with the wrong key
    assert card.image.pin.value == INITIAL


def test_reload_pin_plain_cla_refused() -> None:
    card = make_card()
    challenge(card)
    assert sw_of(card, "805E000103864200") == 0x6A86  # that is CHANGE PIN with bad P1
    assert sw_of(card, "045E000103864200") == 0x6E00


def test_reload_pin_wrong_p2() -> None:
    card = make_card()
    assert reload(card, "864200", 0x02)[1] == 0x6A86


def test_unblock_pin() -> None:
    card = make_card()
    for _ in range(3):
        verify(card, "000000")
    assert sm_send(card, KeyRole.PUK, 0x84, 0x24, 0x00, 0x01) == (b"", 0x9000)
    assert card.image.pin.tries_left == 3
    assert verify(card, INITIAL) == 0x9000


def test_unblock_pin_with_data_or_wrong_mac() -> None:
    card = make_card()
    assert sm_send(card, KeyRole.PUK, 0x84, 0x24, 0x00, 0x01, b"\x01")[1] == 0x6700
    assert sm_send(card, KeyRole.AMK, 0x84, 0x24, 0x00, 0x01)[1] == 0x6988
    assert sm_send(card, KeyRole.PUK, 0x84, 0x24, 0x01, 0x01)[1] == 0x6A86


def test_pin_key_lock_after_five_bad_macs() -> None:
    card = make_card()
    for _ in range(5):
        assert sm_send(card, KeyRole.AMK, 0x84, 0x24, 0x00, 0x01)[1] == 0x6988
    assert sm_send(card, KeyRole.PUK, 0x84, 0x24, 0x00, 0x01)[1] == 0x6983


def test_pin_functions_refused_in_blank_state() -> None:
    card = make_card(life_cycle=LifeCycle.BLANK)
    assert verify(card, INITIAL) == 0x6985
    assert change(card, INITIAL, "135790") == 0x6985
    assert reload(card, "135790")[1] == 0x6985


@pytest.mark.parametrize("generation", [2, 1])
def test_pin_on_older_generations_uses_retail_mac(generation: int) -> None:
    card = make_card(generation)
    pin = card.image.pin.value
    assert verify(card, pin) == 0x9000
    assert reload(card, "975310") == (b"", 0x9000)
    assert verify(card, "975310") == 0x9000
