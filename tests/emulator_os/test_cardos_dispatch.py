"""CLA/INS dispatch, malformed APDUs, and the status word table."""

from __future__ import annotations

import pytest
from cardos_helpers import make_card, sw_of, tx

from apdu.status import lookup
from emulator.card_os import sw as sw_module


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00FF0000", 0x6D00),
        ("00000000", 0x6D00),
        ("A0B2032C00", 0x6E00),
        ("10B2032C00", 0x6E00),
        ("01B2032C00", 0x6E00),
        ("00DC032C05030131313131", 0x6982),  # UPDATE RECORD without SM
        ("00D600000100", 0x6982),
        ("802400010400000000", 0x6982),
        ("002400010400000000", 0x6E00),
        ("00B2", 0x6700),
        ("00B2032C0300", 0x6700),  # Lc 3 with 1 byte
        ("00A404000F7378", 0x6700),
    ],
)
def test_dispatch_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw


def test_sm2_commands_unknown_on_gen2() -> None:
    card = make_card(2)
    assert sw_of(card, "804A010041") == 0x6D00
    assert sw_of(card, "844A00000400000000") == 0x6D00


def test_extended_length_apdu_is_parsed() -> None:
    assert tx(make_card(), "00B2032C000000") == (bytes.fromhex("0304332E3030"), 0x9000)


def test_every_status_word_is_in_the_table() -> None:
    names = [n for n in dir(sw_module) if n.startswith("SW_")]
    assert len(names) > 20
    for name in names:
        value = getattr(sw_module, name)
        entry = lookup(value | (0x01 if value in (0x6100, 0x6C00) else 0))
        assert entry.pattern != "xxxx", name
