"""CardHost / VirtualSlot through pcscd + vpcd + pyscard: several cards at
once, insert and remove, contact and contactless ATRs, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator_pcsc_helpers import (
    GEN2_ATR,
    GEN3_CONTACT_ATR,
    GEN3_CONTACTLESS_ATR,
    PSAM_ATR,
    READ_EF05_TAG07,
    SELECT_SSSE,
    connected,
    hexs,
    transmit_fails,
    wait_reader,
)

from apdu.errors import NoCardError
from card_model.demo import demo_card_image, demo_psam_image
from card_model.store import CardStore
from emulator.card_os import CardOS
from emulator.errors import ImageInUse, SlotInUse, SlotUnavailable, UnknownSlot
from emulator.runner import CardHost, VirtualSlot
from emulator.stack import PcscStack

PSAM_SELECT = bytes.fromhex("00A4040009A0000000038698070100")
PSAM_TERMINAL_NUMBER = bytes.fromhex("00B0960006")


def test_four_cards_at_once_answer_independently(pcsc_stack: PcscStack, host: CardHost) -> None:
    host.add(0)
    host.add(1, interface="contactless")
    host.add(2, generation=2)
    host.add(3, psam=True)
    links = {
        0: connected(pcsc_stack.reader_for_slot(0), GEN3_CONTACT_ATR),
        1: connected(pcsc_stack.reader_for_slot(1), GEN3_CONTACTLESS_ATR),
        2: connected(pcsc_stack.reader_for_slot(2), GEN2_ATR),
        3: connected(pcsc_stack.reader_for_slot(3), PSAM_ATR),
    }
    assert links[0].protocol == "T0"
    assert links[1].protocol == "T1"
    assert links[0].transmit(SELECT_SSSE)[-3:] == bytes.fromhex("039000")
    assert links[1].transmit(SELECT_SSSE)[-3:] == bytes.fromhex("039000")
    assert links[2].transmit(SELECT_SSSE)[-3:] == bytes.fromhex("029000")
    assert links[0].transmit(READ_EF05_TAG07) == b"\x07\x09X00000019\x90\x00"
    assert links[2].transmit(READ_EF05_TAG07) == b"\x07\x09B00000027\x90\x00"
    assert links[3].transmit(PSAM_SELECT)[-2:] == b"\x90\x00"
    assert hexs(links[3].transmit(PSAM_TERMINAL_NUMBER)) == "1101020000019000"
    for transport in links.values():
        transport.disconnect()
    assert host.slot(0).apdu_count == 2
    assert [entry["slot"] for entry in host.status()] == [0, 1, 2, 3]
    assert {entry["kind"] for entry in host.status()} == {"card", "psam"}


def test_remove_and_insert_on_command(pcsc_stack: PcscStack, host: CardHost) -> None:
    reader = pcsc_stack.reader_for_slot(0)
    virtual = host.add(0)
    transport = connected(reader, GEN3_CONTACT_ATR)
    host.remove(0)
    assert not virtual.inserted
    wait_reader(reader, None)
    assert isinstance(transmit_fails(transport, SELECT_SSSE), NoCardError)
    host.remove(0)  # pulling an empty slot is a no-op
    host.insert(0)
    host.insert(0)  # inserting an inserted card is a no-op
    assert virtual.inserted
    transport = connected(reader, GEN3_CONTACT_ATR)
    assert transport.transmit(SELECT_SSSE)[-2:] == b"\x90\x00"
    transport.disconnect()


def test_a_session_does_not_survive_removal(pcsc_stack: PcscStack, host: CardHost) -> None:
    reader = pcsc_stack.reader_for_slot(1)
    card = CardOS(demo_card_image())
    host.add(1, card)
    transport = connected(reader, GEN3_CONTACT_ATR)
    challenge = transport.transmit(bytes.fromhex("0084000008"))
    assert len(challenge) == 10 and card.session.challenge is not None
    host.remove(1)
    assert card.session.challenge is None
    wait_reader(reader, None)
    host.insert(1)
    wait_reader(reader, GEN3_CONTACT_ATR)


def test_a_card_given_as_object_and_one_from_an_image(
    pcsc_stack: PcscStack, host: CardHost, tmp_path: Path
) -> None:
    image_path = tmp_path / "gen1.json"
    CardStore(image_path).commit(demo_card_image(1))
    psam_path = tmp_path / "psam.json"
    CardStore(psam_path).commit(demo_psam_image())
    host.add(3, image=psam_path)
    host.add(2, image=image_path, insert=False)
    assert not host.slot(2).inserted
    host.insert(2)
    transport = connected(pcsc_stack.reader_for_slot(2), bytes.fromhex("3B6A0000424A5353433100019000"))
    assert transport.transmit(SELECT_SSSE)[-3:] == bytes.fromhex("019000")
    transport.disconnect()
    assert host.slot(2).status()["image"] == str(image_path.resolve())
    assert host.slot(2).summary()["generation"] == 1
    wait_reader(pcsc_stack.reader_for_slot(3), PSAM_ATR)
    assert host.slot(3).summary()["terminal_number"] == "110102000001"


def test_slot_errors(host: CardHost, tmp_path: Path) -> None:
    host.add(3, insert=False)
    with pytest.raises(SlotInUse) as in_use:
        host.add(3)
    assert in_use.value.error_id == "slot_in_use"
    with pytest.raises(UnknownSlot):
        host.remove(2)
    with pytest.raises(UnknownSlot):
        host.slot(2)


def test_an_unreachable_slot_is_slot_unavailable() -> None:
    virtual = VirtualSlot(63, CardOS(demo_card_image()))
    with pytest.raises(SlotUnavailable) as caught:
        virtual.insert(timeout=0.2)
    assert caught.value.exit_code == 3
    assert caught.value.to_dict()["error"] == "slot_unavailable"
    assert not virtual.inserted


def test_one_image_cannot_run_twice(host: CardHost, tmp_path: Path) -> None:
    image_path = tmp_path / "card.json"
    CardStore(image_path).commit(demo_card_image())
    host.add(0, image=image_path, insert=False)
    with CardHost() as other, pytest.raises(ImageInUse):
        other.add(1, image=image_path, insert=False)
    host.discard(0)
    with CardHost() as other:
        other.add(1, image=image_path, insert=False)


def test_closing_the_host_pulls_every_card(pcsc_stack: PcscStack) -> None:
    with CardHost() as card_host:
        card_host.add(0)
        card_host.add(1, psam=True)
        wait_reader(pcsc_stack.reader_for_slot(0), GEN3_CONTACT_ATR)
        wait_reader(pcsc_stack.reader_for_slot(1), PSAM_ATR)
    assert card_host.slots == {}
    wait_reader(pcsc_stack.reader_for_slot(0), None)
    wait_reader(pcsc_stack.reader_for_slot(1), None)
