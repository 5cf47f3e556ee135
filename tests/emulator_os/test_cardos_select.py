"""SELECT, ATRs and the T=0 / T=1 answer shapes."""

from __future__ import annotations

import pytest
from cardos_helpers import SELECT_SSSE, SSSE_NAME, make_card, sw_of, tx

from apdu.tlv import parse_one
from card_model.errors import ProfileError
from card_model.lifecycle import LifeCycle


def _fci(generation: int) -> bytes:
    name = bytes.fromhex(SSSE_NAME)
    inner = bytes((0x9F, 0x08, 0x01, generation))
    return (
        bytes((0x6F, 2 + len(name) + 2 + len(inner), 0x84, len(name)))
        + name
        + bytes((0xA5, len(inner)))
        + inner
    )


@pytest.mark.parametrize("generation", [3, 2, 1])
def test_select_by_name_with_le_answers_fci(generation: int) -> None:
    card = make_card(generation)
    data, sw = tx(card, SELECT_SSSE + "00")
    assert sw == 0x9000
    assert data == _fci(generation)
    fci = parse_one(data)
    assert fci.tag == 0x6F


def test_select_t0_without_le_answers_61xx_then_get_response() -> None:
    card = make_card()
    data, sw = tx(card, SELECT_SSSE)
    assert (data, sw) == (b"", 0x6100 | len(_fci(3)))
    data, sw = tx(card, f"00C00000{len(_fci(3)):02X}")
    assert (data, sw) == (_fci(3), 0x9000)
    assert sw_of(card, "00C0000000") == 0x6985  # nothing pending any more


def test_get_response_in_pieces_and_wrong_le() -> None:
    card = make_card()
    tx(card, SELECT_SSSE)
    assert sw_of(card, "00C0000030") == 0x6C19
    data, sw = tx(card, "00C0000010")
    assert sw == 0x6109 and data == _fci(3)[:16]
    data, sw = tx(card, "00C0000000")
    assert sw == 0x9000 and data == _fci(3)[16:]


def test_pending_response_dropped_by_other_command() -> None:
    card = make_card()
    tx(card, SELECT_SSSE)
    assert sw_of(card, "80CADF0100") == 0x9000
    assert sw_of(card, "00C0000019") == 0x6985


def test_get_response_wrong_p1p2() -> None:
    card = make_card()
    tx(card, SELECT_SSSE)
    assert sw_of(card, "00C0010019") == 0x6A86


def test_contactless_answers_data_directly() -> None:
    card = make_card(interface="contactless")
    assert card.atr() == bytes.fromhex("3B8A8001424A5353433300039000E0")
    data, sw = tx(card, SELECT_SSSE)
    assert sw == 0x9000 and data == _fci(3)


@pytest.mark.parametrize(
    ("generation", "atr"),
    [
        (3, "3B6A0000424A5353433300039000"),
        (2, "3B6A0000424A5353433200029000"),
        (1, "3B6A0000424A5353433100019000"),
    ],
)
def test_contact_atrs(generation: int, atr: str) -> None:
    assert make_card(generation).atr() == bytes.fromhex(atr)


def test_gen2_has_no_contactless_interface() -> None:
    with pytest.raises(ProfileError):
        make_card(2, interface="contactless")


def test_select_mf_by_fid_and_p2_0c() -> None:
    card = make_card()
    data, sw = tx(card, "00A40000023F0000")
    assert (data, sw) == (_fci(3), 0x9000)
    assert tx(card, "00A4040C0F" + SSSE_NAME) == (b"", 0x9000)


def test_select_ef_by_fid_sets_current_ef() -> None:
    card = make_card()
    assert tx(card, "00A4000002EF05") == (b"", 0x9000)
    data, sw = tx(card, "00B2030400")
    assert (data, sw) == (bytes.fromhex("0304") + b"3.00", 0x9000)


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00A404000F7378312E73682EC9E7BBE1B1A3D5CE", 0x6A82),  # other DF name
        ("00A4000002EF99", 0x6A82),  # unknown FID
        ("00A4000003EF0500", 0x6700),  # FID of 3 bytes
        ("00A40400", 0x6700),  # no name
        ("00A4080002EF05", 0x6A86),  # unsupported P1
        ("00A4040104" + SSSE_NAME[:8], 0x6A86),  # unsupported P2
    ],
)
def test_select_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw


def test_select_gen2_has_no_certificate_files() -> None:
    assert sw_of(make_card(2), "00A4000002EF0D") == 0x6A82


def test_select_temporarily_blocked_answers_fci_and_6283() -> None:
    card = make_card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    data, sw = tx(card, SELECT_SSSE)
    assert sw == 0x6283 and data == _fci(3)


def test_select_card_blocked_answers_6a81() -> None:
    card = make_card(life_cycle=LifeCycle.CARD_BLOCKED)
    assert tx(card, SELECT_SSSE + "00") == (b"", 0x6A81)
