"""Reader kinds and reader selection: pure rules, then over pcscd + vpcd."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from terminal_cards import ForeignCard, card_os

from apdu.errors import InvalidInput, KeySourceError, NoCardError
from card_model.demo import demo_psam_image
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from terminal.errors import ReaderAmbiguous, ReaderNotMatched
from terminal.keysource import PsamKeySource
from terminal.readers import (
    ReaderInfo,
    classify,
    find_psam_reader,
    historical_bytes,
    itype_order,
    list_readers,
    select_reader,
)

GEN3_CONTACT = bytes.fromhex("3B6A0000424A5353433300039000")
GEN3_CONTACTLESS = bytes.fromhex("3B8A8001424A5353433300039000E0")
PSAM_ATR = bytes.fromhex("3B6A0000424A5053414D00019000")


def test_historical_bytes() -> None:
    assert historical_bytes(GEN3_CONTACT) == b"BJSSC3\x00\x03\x90\x00"
    assert historical_bytes(GEN3_CONTACTLESS) == b"BJSSC3\x00\x03\x90\x00"
    assert historical_bytes(b"\x3b") == b""
    assert historical_bytes(bytes.fromhex("3BFF")) == b""


@pytest.mark.parametrize(
    ("name", "atr", "kind", "source"),
    [
        ("Virtual PCD 00 00", GEN3_CONTACT, "contact", "atr"),
        ("Virtual PCD 00 00", GEN3_CONTACTLESS, "contactless", "atr"),
        ("Virtual PCD 00 00", PSAM_ATR, "psam", "atr"),
        ("ACS ACR1281 1S Dual Reader PICC 0", GEN3_CONTACT, "contactless", "name"),
        ("Virtual PCD 00 00", None, "unknown", "default"),
        ("ACS ACR1281 1S Dual Reader PICC 0", None, "contactless", "name"),
        ("ACS ACR1281 1S Dual Reader SAM 0", None, "psam", "name"),
        ("ACS ACR1281 1S Dual Reader ICC 0", None, "contact", "name"),
        ("OMNIKEY CardMan 5x21-CL 0", None, "contactless", "name"),
        ("HID Global OMNIKEY 5422CL Smartcard Reader 0", None, "contactless", "name"),
        ("Generic USB Smart Card Reader 0", None, "unknown", "default"),
    ],
)
def test_kind_rules(name: str, atr: bytes | None, kind: str, source: str) -> None:
    assert classify(name, atr) == (kind, source)


def _reader(name: str, kind: str, card: bool = True) -> ReaderInfo:
    return ReaderInfo(name, kind, card, GEN3_CONTACT if card else None)  # type: ignore[arg-type]


POOL = [
    _reader("Reader A 00", "contact"),
    _reader("Reader A 01", "contactless"),
    _reader("Reader A 02", "psam"),
    _reader("Reader B", "contact", card=False),
]


def test_reader_state_in_one_word() -> None:
    assert [r.state for r in POOL] == ["present", "present", "present", "empty"]
    card = POOL[0]
    assert replace(card, in_use=True).state == "in_use"
    assert replace(card, in_use=True, exclusive=True).state == "exclusive"
    assert replace(card, mute=True).state == "mute"
    assert replace(card, unavailable=True).state == "unavailable"
    assert replace(POOL[3], unavailable=True).state == "unavailable"
    assert "state" not in card.to_dict()  # the contract's four fields; the CLI adds the state


def test_select_by_pattern() -> None:
    assert select_reader(POOL, pattern="a 01").name == "Reader A 01"
    assert select_reader(POOL, pattern="  reader b ").name == "Reader B"
    with pytest.raises(ReaderAmbiguous) as many:
        select_reader(POOL, pattern="reader a")
    assert many.value.candidates == ("Reader A 00", "Reader A 01", "Reader A 02")
    assert many.value.national_code == -14 and "Reader A 02" in str(many.value)
    with pytest.raises(ReaderNotMatched) as none:
        select_reader(POOL, pattern="omnikey")
    assert none.value.national_code == -12 and none.value.available == tuple(r.name for r in POOL)
    with pytest.raises(InvalidInput):
        select_reader(POOL, pattern="  ")


def test_exact_name_wins() -> None:
    pool = [_reader("Reader", "contact"), _reader("Reader 2", "contact")]
    assert select_reader(pool, pattern="READER").name == "Reader"


def test_select_by_itype() -> None:
    assert itype_order(3) == ("contact", "contactless")
    assert select_reader(POOL, itype=1).name == "Reader A 00"
    assert select_reader(POOL, itype=2).name == "Reader A 01"
    assert select_reader(POOL, itype=3).name == "Reader A 00"
    assert select_reader(POOL, itype=4).name == "Reader A 01"
    assert select_reader(POOL, pattern="reader a", itype=4).name == "Reader A 01"
    only_contactless = [POOL[1], POOL[3]]
    assert select_reader(only_contactless, itype=3).name == "Reader A 01"
    with pytest.raises(NoCardError) as none:
        select_reader(only_contactless, itype=1)
    assert none.value.national_code == -2
    with pytest.raises(ReaderNotMatched):
        select_reader([], itype=3)
    for bad in (0, 5, True, "1"):
        with pytest.raises(InvalidInput):
            select_reader(POOL, itype=bad)  # type: ignore[arg-type]


def test_psam_is_never_the_card_reader() -> None:
    assert select_reader([POOL[2], POOL[0]]).name == "Reader A 00"
    assert select_reader([POOL[2]], include_psam=True).name == "Reader A 02"
    assert find_psam_reader(POOL).name == "Reader A 02"
    with pytest.raises(KeySourceError) as info:
        find_psam_reader(POOL[:2])
    assert info.value.national_code == -2201


def test_live_kinds_and_selection(
    pcsc_stack: PcscStack, psam_in_slot: PsamKeySource, insert: Callable[..., object]
) -> None:
    mine = {pcsc_stack.reader_for_slot(s) for s in (4, 5, 6)}
    with insert(card_os(3), slot=4), insert(card_os(3, interface="contactless"), slot=6):  # type: ignore[attr-defined]
        readers = [r for r in list_readers() if r.name in mine]
        kinds = {r.name: r.kind for r in readers}
        assert kinds == {
            pcsc_stack.reader_for_slot(4): "contact",
            pcsc_stack.reader_for_slot(5): "psam",
            pcsc_stack.reader_for_slot(6): "contactless",
        }
        card = next(r for r in readers if r.kind == "contact")
        assert card.to_dict() == {
            "name": pcsc_stack.reader_for_slot(4),
            "kind": "contact",
            "card_present": True,
            "atr": GEN3_CONTACT.hex().upper(),
        }
        assert select_reader(readers, itype=1).name == pcsc_stack.reader_for_slot(4)
        assert select_reader(readers, itype=2).name == pcsc_stack.reader_for_slot(6)
        assert select_reader(readers, itype=4).name == pcsc_stack.reader_for_slot(6)
        assert find_psam_reader(readers).name == pcsc_stack.reader_for_slot(5)
        assert select_reader(
            pattern=pcsc_stack.reader_for_slot(4).lower()
        ).name == pcsc_stack.reader_for_slot(4)
    with pytest.raises(ReaderAmbiguous) as many:
        select_reader(pattern="virtual pcd")
    assert len(many.value.candidates) >= 16
    with pytest.raises(ReaderNotMatched):
        select_reader(pattern="no such reader anywhere")
    empty = [r for r in list_readers() if r.name == pcsc_stack.reader_for_slot(6)]
    assert empty[0].to_dict()["card_present"] is False and empty[0].kind == "unknown"
    with pytest.raises(NoCardError):
        select_reader(empty, itype=3)


def test_live_foreign_and_psam_kinds(pcsc_stack: PcscStack, insert: Callable[..., object]) -> None:
    with insert(ForeignCard(), slot=6):  # type: ignore[attr-defined]
        (info,) = [r for r in list_readers() if r.name == pcsc_stack.reader_for_slot(6)]
        assert info.kind == "contactless"  # the foreign ATR is a PC/SC part 3 contactless one
    with insert(PsamCard(demo_psam_image()), slot=6):  # type: ignore[attr-defined]
        (info,) = [r for r in list_readers() if r.name == pcsc_stack.reader_for_slot(6)]
        assert info.kind == "psam"
