"""The echo card, the stock VirtualICC launcher and its workarounds, slot handling."""

from __future__ import annotations

import pytest

from apdu.pcsc import reader_states
from emulator.stack import PcscStack
from terminal.bench.echo import EchoCard
from terminal.bench.errors import BenchError, BenchSetupError
from terminal.bench.slots import SlotPool, connect_when_present, inserted, parse_slots, wait_until_empty
from terminal.bench.stock import StockVicc
from terminal.bench.vicc_launcher import ber_pack

SLOT = 14


def test_echo_card_answers_9000_to_anything() -> None:
    card = EchoCard()
    assert card.atr() == bytes.fromhex("3B6400004543484F")
    card.power_on()
    assert card.process(b"\x00\xa4\x04\x00") == b"\x90\x00"
    assert card.process(b"\x80\xca\xdf\x01\x00") == b"\x90\x00"
    card.reset()
    card.power_off()
    assert card.commands == 2


def test_ber_pack_encodes_what_the_stock_code_meant() -> None:
    assert ber_pack([(0x83, 2, b"\x3f\x00")]) == bytes.fromhex("83023F00")
    nested = [(0x62, 0, [(0x83, 2, b"\x3f\x00"), (0x8A, 1, b"\x05")])]
    assert ber_pack(nested, recalculate_length=True) == bytes.fromhex("620783023F008A0105")
    assert ber_pack([(0x5F20, 200, b"a" * 200)]) == bytes.fromhex("5F2081C8") + b"a" * 200
    assert ber_pack([(0x00, 0, b""), (0xFF, 0, b"")]) == b"\x00\xff"


@pytest.mark.parametrize(
    ("text", "slots"),
    [("14,15", (14, 15)), ("12-15", (12, 13, 14, 15)), ("4-5, 15,4", (4, 5, 15)), ("0", (0,))],
)
def test_parse_slots(text: str, slots: tuple[int, ...]) -> None:
    assert parse_slots(text) == slots


@pytest.mark.parametrize("text", ["", "a", "15-14", "16", "3-17", "1,,2"])
def test_parse_slots_refuses_bad_lists(text: str) -> None:
    with pytest.raises(BenchError):
        parse_slots(text)


def test_stock_vicc_reports_a_missing_installation(tmp_path: object) -> None:
    stock = StockVicc(35963 + SLOT)
    stock.library = stock.library / "nowhere"
    with pytest.raises(BenchSetupError, match="python3-virtualsmartcard"):
        stock.check_installed()


def test_stock_vicc_works_around_its_python3_bugs(pcsc_stack: PcscStack) -> None:
    reader = pcsc_stack.reader_for_slot(SLOT)
    with StockVicc(pcsc_stack.port_for_slot(SLOT)) as stock, connect_when_present(reader) as transport:
        # imports (sha shim) and the plain benchmark APDU
        assert transport.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
        # an FCI answer used to raise TypeError in TLVutils.pack
        assert transport.transmit(bytes.fromhex("00A40000023F00")) == bytes.fromhex("610C")
        fci = transport.transmit(bytes.fromhex("00C000000C"))
        assert fci[:4] == bytes.fromhex("6F0A8302") and fci[-2:] == b"\x90\x00"
        # INTERNAL AUTHENTICATE without data raises ValueError inside the stock OS
        assert transport.transmit(bytes.fromhex("00880000")) == bytes.fromhex("6F00")
        # ... and the card is still there
        assert transport.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
        stock.check_running()
        assert "answered 6F00" in stock.output()
    wait_until_empty(reader)


def test_slot_pool_skips_occupied_slots(pcsc_stack: PcscStack) -> None:
    pool = SlotPool(pcsc_stack, (14, 15))
    assert pool.free() == [14, 15]
    with inserted(EchoCard(), 14, pcsc_stack):
        transport = connect_when_present(pcsc_stack.reader_for_slot(14))
        transport.disconnect()
        assert pool.free() == [15]
        with pytest.raises(BenchSetupError, match="needs 2 free"):
            with pool.take(2, "a test"):
                pass
        with pool.take(1, "a test") as slots:
            assert slots == [15]
            assert pool.free() == []
        assert pool.free() == [15]
    (state,) = reader_states([pcsc_stack.reader_for_slot(14)])
    assert state.empty
