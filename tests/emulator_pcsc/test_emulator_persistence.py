"""A card's state lives in its image file: it survives restarts of the
``emulator run`` process, and a SIGKILL at any point leaves the old or the
new state (every change is committed atomically before the card answers)."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

from emulator_pcsc_helpers import (
    GEN3_CONTACT_ATR,
    PIN_STATUS,
    WRONG_VERIFY,
    connected,
    start_host,
    stop_host,
    wait_reader,
)

from apdu.errors import SscardError
from apdu.pcsc import PcscTransport
from card_model.demo import demo_card_image
from card_model.store import CardStore
from emulator.runner import CardHost
from emulator.stack import PcscStack

PINS = ("211008", "123456")  # the demo card's initial PIN, and the one it toggles to


def _change_pin(old: str, new: str) -> bytes:
    return bytes.fromhex(f"805E010107{old}FF{new}")


def test_state_survives_a_restart_of_the_run_process(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    reader = pcsc_stack.reader_for_slot(0)
    control = str(tmp_path / "control")
    process, ready = start_host("--slot", "0", "--image", str(image), "--control-dir", control)
    try:
        assert ready["slots"][0]["image"] == str(image.resolve())
        transport = connected(reader, GEN3_CONTACT_ATR)
        assert transport.transmit(WRONG_VERIFY) == b"\x63\xc2"
        assert transport.transmit(WRONG_VERIFY) == b"\x63\xc1"
        transport.disconnect()
    finally:
        assert stop_host(process, signal.SIGINT) == 0
    wait_reader(reader, None)
    assert CardStore(image).load_card().pin.tries_left == 1
    process, _ = start_host("--slot", "0", "--image", str(image), "--control-dir", control)
    try:
        transport = connected(reader, GEN3_CONTACT_ATR)
        assert transport.transmit(PIN_STATUS) == bytes.fromhex("0103019000")
        transport.disconnect()
    finally:
        assert stop_host(process) == 0
    wait_reader(reader, None)


def test_state_survives_a_new_host_in_process(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    reader = pcsc_stack.reader_for_slot(1)
    with CardHost() as host:
        host.add(1, image=image)
        transport = connected(reader, GEN3_CONTACT_ATR)
        assert transport.transmit(_change_pin(PINS[0], PINS[1])) == b"\x90\x00"
    wait_reader(reader, None)
    with CardHost() as host:
        host.add(1, image=image)
        assert host.slot(1).summary()["pin"] == {
            "state": "ok",
            "retries_left": 3,
            "max_tries": 3,
            "initial": False,
        }
        transport = connected(reader, GEN3_CONTACT_ATR)
        assert transport.transmit(bytes.fromhex("0020000103") + bytes.fromhex(PINS[1])) == b"\x90\x00"
    wait_reader(reader, None)


def _hammer(transport: PcscTransport, revision: int, first: threading.Timer) -> int:
    """CHANGE PIN back and forth until the card goes away, starting ``first``
    after the first acknowledged change; returns how many were acknowledged."""
    acknowledged = 0
    while True:
        old, new = PINS[(revision + acknowledged) % 2], PINS[(revision + acknowledged + 1) % 2]
        try:
            answer = transport.transmit(_change_pin(old, new))
        except SscardError:
            break
        if answer != b"\x90\x00":
            assert answer == b"", answer.hex()
            break
        acknowledged += 1
        if acknowledged == 1:
            first.start()
    return acknowledged


def test_sigkill_at_any_point_leaves_old_or_new_state(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    reader = pcsc_stack.reader_for_slot(2)
    control = str(tmp_path / "control")
    rng = random.Random(20251123)
    for _ in range(3):
        before = CardStore(image).load_card()
        assert before.pin.value == PINS[before.revision % 2]
        process, _ = start_host("--slot", "2", "--image", str(image), "--control-dir", control)
        transport = connected(reader, GEN3_CONTACT_ATR)
        killer = threading.Timer(rng.uniform(0.0, 0.25), os.kill, (process.pid, signal.SIGKILL))
        try:
            acknowledged = _hammer(transport, before.revision, killer)
        finally:
            if killer.is_alive():
                killer.join()
            assert stop_host(process) == -signal.SIGKILL
        after = CardStore(image).load_card()
        assert acknowledged > 0
        assert before.revision + acknowledged <= after.revision <= before.revision + acknowledged + 1
        assert after.pin.value == PINS[after.revision % 2]
        assert after.pin.tries_left == 3
        wait_reader(reader, None)


def test_a_new_host_clears_what_an_interrupted_commit_left(tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    leftover = tmp_path / ".card.json.k1ll3d.tmp"
    leftover.write_bytes(b'{"format": "sscard-card-im')
    with CardHost() as host:
        host.add(3, image=image, insert=False)
        assert not leftover.exists()
        assert host.slot(3).summary()["revision"] == 0
    assert (tmp_path / ".card.json.lock").exists()
