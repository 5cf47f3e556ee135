"""GET DATA DF01..DF04."""

from __future__ import annotations

import pytest
from cardos_helpers import external_auth, make_card, sw_of, tx

from card_model.keys import KeyRole


def test_life_cycle_and_version() -> None:
    card = make_card()
    assert tx(card, "80CADF0100") == (b"\x01", 0x9000)
    assert tx(card, "80CADF0400") == (bytes((3, 1, 0)), 0x9000)
    assert tx(make_card(1), "80CADF0400") == (bytes((1, 1, 0)), 0x9000)


def test_key_counters_need_eak() -> None:
    card = make_card()
    assert sw_of(card, "80CADF0300") == 0x6982
    assert external_auth(card, KeyRole.RK) == 0x9000
    assert sw_of(card, "80CADF0300") == 0x6982
    assert external_auth(card, KeyRole.EAK) == 0x9000
    data, sw = tx(card, "80CADF0300")
    assert sw == 0x9000
    assert data == b"".join(bytes((kid, 5, 5)) for kid in range(1, 11))


def test_key_counters_gen1() -> None:
    card = make_card(1)
    assert external_auth(card, KeyRole.EAK) == 0x9000
    data, _ = tx(card, "80CADF0300")
    assert [data[i] for i in range(0, len(data), 3)] == [1, 2, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("80CADF0900", 0x6A88),
        ("80CA9F0800", 0x6A88),
        ("80CADF0105", 0x6C01),
        ("80CADF010100", 0x6700),
        ("00CADF0100", 0x6E00),
    ],
)
def test_get_data_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw


def test_get_data_exact_le() -> None:
    assert tx(make_card(), "80CADF0203") == (bytes((3, 3, 1)), 0x9000)
