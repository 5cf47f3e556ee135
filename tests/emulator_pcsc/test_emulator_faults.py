"""Every fault kind end to end (pcscd + vpcd + pyscard), and fault specs as data."""

from __future__ import annotations

import threading
import time

import pytest
from emulator_pcsc_helpers import (
    GEN3_CONTACT_ATR,
    READ_EF05_TAG07,
    SELECT_SSSE,
    WRONG_VERIFY,
    connected,
    no_answer,
    transmit_fails,
    wait_reader,
)

from apdu.errors import SscardError
from card_model.demo import demo_card_image
from emulator.card_os import CardOS
from emulator.errors import FaultSpecError
from emulator.faults import Fault, fault_kinds, parse_fault_file
from emulator.runner import CardHost
from emulator.stack import PcscStack

TAG07 = b"\x07\x09X00000019"


def _card_on(host: CardHost, pcsc_stack: PcscStack, slot: int, fault: Fault) -> tuple[CardOS, object]:
    card = CardOS(demo_card_image())
    virtual = host.add(slot, card)
    virtual.arm_fault(fault)
    return card, connected(pcsc_stack.reader_for_slot(slot), GEN3_CONTACT_ATR)


def test_tear_before_execution_keeps_the_state(pcsc_stack: PcscStack, host: CardHost) -> None:
    card, transport = _card_on(host, pcsc_stack, 0, Fault.of("tear_before", ins="20"))
    assert transport.transmit(SELECT_SSSE)[-2:] == b"\x90\x00"
    no_answer(transport, WRONG_VERIFY)
    assert isinstance(transmit_fails(transport, SELECT_SSSE), SscardError)
    assert card.image.pin.tries_left == 3
    assert not host.slot(0).inserted
    wait_reader(pcsc_stack.reader_for_slot(0), None)
    assert [event.to_mapping() for event in host.slot(0).fired] == [
        {"kind": "tear_before", "apdu_index": 2, "ins": "20"}
    ]


def test_tear_after_execution_commits_then_pulls(pcsc_stack: PcscStack, host: CardHost) -> None:
    card, transport = _card_on(host, pcsc_stack, 1, Fault.of("tear_after", ins="20"))
    no_answer(transport, WRONG_VERIFY)
    assert card.image.pin.tries_left == 2
    assert card.image.revision == 1
    wait_reader(pcsc_stack.reader_for_slot(1), None)
    assert host.slot(1).armed == []


def test_a_torn_card_can_come_back_by_itself(pcsc_stack: PcscStack, host: CardHost) -> None:
    reader = pcsc_stack.reader_for_slot(2)
    card, transport = _card_on(host, pcsc_stack, 2, Fault.of("tear_after", reinsert_after=0.5))
    no_answer(transport, WRONG_VERIFY)
    deadline = time.monotonic() + 5
    while not host.slot(2).inserted:
        assert time.monotonic() < deadline, "the card was not put back"
        time.sleep(0.01)
    transport = connected(reader, GEN3_CONTACT_ATR)
    assert transport.transmit(bytes.fromhex("0020000100")) == b"\x63\xc2"
    assert card.image.pin.tries_left == 2
    transport.disconnect()


def test_mute_holds_then_drops_the_connection(pcsc_stack: PcscStack, host: CardHost) -> None:
    card, transport = _card_on(host, pcsc_stack, 3, Fault.of("mute", hold=0.3, execute=False, ins="20"))
    no_answer(transport, WRONG_VERIFY)
    assert card.image.pin.tries_left == 3
    wait_reader(pcsc_stack.reader_for_slot(3), None)


def test_a_mute_card_is_released_at_once_when_removed(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 0, Fault.of("mute", hold=30))
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(no_answer(transport, SELECT_SSSE) is None))
    worker.start()
    while not host.slot(0).fired:
        time.sleep(0.005)
    host.remove(0)
    worker.join(timeout=5)
    assert not worker.is_alive(), "the reader stayed blocked after the card was pulled"
    assert outcome == [True]


def test_slow_card_answers_correctly(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 1, Fault.of("slow", delay=0.2))
    assert transport.transmit(READ_EF05_TAG07) == TAG07 + b"\x90\x00"
    assert transport.transmit(READ_EF05_TAG07) == TAG07 + b"\x90\x00"
    assert host.slot(1).fired[0].kind == "slow"
    transport.disconnect()


def test_wrong_response_with_and_without_execution(pcsc_stack: PcscStack, host: CardHost) -> None:
    card, transport = _card_on(host, pcsc_stack, 2, Fault.of("wrong", execute=False, ins="20"))
    assert transport.transmit(WRONG_VERIFY) == b"\x6f\x00"
    assert card.image.pin.tries_left == 3
    host.slot(2).arm_fault(Fault.of("wrong", response="9000", ins="20"))
    assert transport.transmit(WRONG_VERIFY) == b"\x90\x00"
    assert card.image.pin.tries_left == 2
    assert transport.transmit(WRONG_VERIFY) == b"\x63\xc1"
    transport.disconnect()


def test_corruption_is_seeded(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 3, Fault.of("corrupt", count=3, seed=7))
    first = transport.transmit(READ_EF05_TAG07)
    host.slot(3).arm_fault(Fault.of("corrupt", count=3, seed=7))
    second = transport.transmit(READ_EF05_TAG07)
    assert first == second
    assert first != TAG07 + b"\x90\x00" and len(first) == len(TAG07) + 2
    assert sum(a != b for a, b in zip(first, TAG07 + b"\x90\x00", strict=True)) == 3
    assert transport.transmit(READ_EF05_TAG07) == TAG07 + b"\x90\x00"
    transport.disconnect()


def test_truncated_answer(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 0, Fault.of("truncate", keep=4))
    assert transport.transmit(READ_EF05_TAG07) == TAG07[:4]
    transport.disconnect()


def test_t0_get_response(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 1, Fault.of("t0_get_response", ins="B2"))
    assert transport.transmit(READ_EF05_TAG07) == b"\x61\x0b"
    assert transport.transmit(bytes.fromhex("00C0000020")) == b"\x6c\x0b"
    assert transport.transmit(bytes.fromhex("00C0000004")) == TAG07[:4] + b"\x61\x07"
    assert transport.transmit(bytes.fromhex("00C0000000")) == TAG07[4:] + b"\x90\x00"
    assert transport.transmit(bytes.fromhex("00C0000000")) == b"\x69\x85"
    transport.disconnect()


def test_t0_get_response_is_discarded_by_another_command(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 2, Fault.of("t0_get_response"))
    assert transport.transmit(READ_EF05_TAG07) == b"\x61\x0b"
    assert transport.transmit(READ_EF05_TAG07) == TAG07 + b"\x90\x00"
    assert transport.transmit(bytes.fromhex("00C0000000")) == b"\x69\x85"
    transport.disconnect()


def test_t0_wrong_le(pcsc_stack: PcscStack, host: CardHost) -> None:
    _, transport = _card_on(host, pcsc_stack, 3, Fault.of("t0_wrong_le", ins="A4"))
    answer = transport.transmit(SELECT_SSSE)
    assert answer[0] == 0x6C
    fci = transport.transmit(SELECT_SSSE[:-1] + bytes([answer[1]]))
    assert fci[:2] == b"\x6f\x17" and fci[-2:] == b"\x90\x00" and len(fci) == answer[1] + 2
    assert transport.transmit(SELECT_SSSE)[-2:] == b"\x90\x00"
    transport.disconnect()


def test_nth_matching_apdu_and_clear(pcsc_stack: PcscStack, host: CardHost) -> None:
    card, transport = _card_on(host, pcsc_stack, 0, Fault.of("wrong", ins="20", nth=2, response="6A00"))
    assert transport.transmit(WRONG_VERIFY) == b"\x63\xc2"
    assert transport.transmit(READ_EF05_TAG07)[-2:] == b"\x90\x00"
    assert transport.transmit(WRONG_VERIFY) == b"\x6a\x00"
    assert host.slot(0).fired[0].apdu_index == 3
    host.slot(0).arm_fault(Fault.of("tear_before"))
    assert len(host.slot(0).armed) == 1
    host.slot(0).clear_faults()
    assert transport.transmit(READ_EF05_TAG07)[-2:] == b"\x90\x00"
    assert card.image.pin.tries_left == 1
    transport.disconnect()


def test_between_picks_a_reproducible_apdu(pcsc_stack: PcscStack, host: CardHost) -> None:
    fault = Fault.of("wrong", between="2-9", seed=11)
    expected = fault.resolved().nth
    assert expected == Fault.of("wrong", between="2-9", seed=11).resolved().nth
    assert 2 <= expected <= 9
    _, transport = _card_on(host, pcsc_stack, 1, fault)
    answers = [transport.transmit(READ_EF05_TAG07) for _ in range(9)]
    assert [index + 1 for index, answer in enumerate(answers) if answer == b"\x6f\x00"] == [expected]
    transport.disconnect()


# -- fault specs as data --------------------------------------------------------------------


def test_every_kind_is_declared_with_texts() -> None:
    kinds = fault_kinds()
    assert set(kinds) == {
        "tear_before",
        "tear_after",
        "mute",
        "slow",
        "wrong",
        "corrupt",
        "truncate",
        "t0_get_response",
        "t0_wrong_le",
    }
    for name, row in kinds.items():
        assert row["zh"] and row["en"]
        assert Fault.of(name).kind == name


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "mute", "hold": 31}, "hold"),
        ({"kind": "mute", "delay": 1}, "delay"),
        ({"kind": "slow", "delay": "soon"}, "delay"),
        ({"kind": "wrong", "response": "XYZ"}, "response"),
        ({"kind": "wrong", "response": ""}, "response"),
        ({"kind": "tear_after", "ins": "2020"}, "ins"),
        ({"kind": "tear_after", "nth": 0}, "nth"),
        ({"kind": "tear_after", "nth": 2, "between": "1-3"}, "between"),
        ({"kind": "tear_after", "between": "5-3"}, "between"),
        ({"kind": "mute", "execute": "yes"}, "execute"),
        ({"kind": "tear_before", "reinsert_after": 0.1}, "reinsert_after"),
    ],
)
def test_bad_fault_specs_name_the_parameter(spec: dict[str, object], field: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        Fault.parse(spec)
    assert caught.value.error_id == "fault_invalid"
    assert caught.value.exit_code == 2
    assert field in str(caught.value) and field in caught.value.message_zh


def test_fault_round_trips_through_its_mapping() -> None:
    fault = Fault.of("wrong", ins="b2", nth=3, seed=9, response="6a82", execute=False)
    again = Fault.parse(fault.to_mapping())
    assert again == fault
    assert fault.to_mapping()["response"] == "6A82"


def test_fault_file() -> None:
    pairs = parse_fault_file(
        '[[fault]]\nslot = 2\nkind = "tear_after"\nins = "20"\n\n[[fault]]\nkind = "slow"\ndelay = 0.1\n'
    )
    assert [(slot, fault.kind) for slot, fault in pairs] == [(2, "tear_after"), (None, "slow")]
    with pytest.raises(FaultSpecError):
        parse_fault_file("fault = 1")
    with pytest.raises(FaultSpecError):
        parse_fault_file("[[fault]\n")
