"""The PC/SC stack helper against the real pcscd, and its pure parts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from apdu.errors import NoCardError
from apdu.pcsc import PcscTransport, list_readers, reader_states
from emulator.stack import (
    OWN_ENTRIES,
    PcscStack,
    StackError,
    pcscd_running,
    reader_conf,
    vpcd_slot_map,
)


def test_stack_lists_sixteen_vpcd_slots(pcsc_stack: PcscStack) -> None:
    names = list_readers()
    for slot in range(16):
        assert pcsc_stack.reader_for_slot(slot) in names
        assert pcsc_stack.port_for_slot(slot) == 35963 + slot
    assert pcsc_stack.reader_for_slot(0) == "Virtual PCD 00 00"
    assert pcsc_stack.reader_for_slot(1) == "Virtual PCD 00 01"
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01"} <= set(names)
    assert pcsc_stack.reader_for_slot(3) == "Virtual PCD B 00 01"
    assert len(pcsc_stack.readers) == 16


def test_vpcd_port_listens_for_each_slot(pcsc_stack: PcscStack) -> None:
    for slot in (15,):
        with socket.create_connection(("127.0.0.1", pcsc_stack.port_for_slot(slot)), 2.0):
            pass


def test_empty_slot_reports_no_card(pcsc_stack: PcscStack) -> None:
    reader = pcsc_stack.reader_for_slot(15)
    (state,) = reader_states([reader])
    assert state.empty
    with pytest.raises(NoCardError):
        PcscTransport(reader).connect()


def test_unknown_slot_is_a_clear_error(pcsc_stack: PcscStack) -> None:
    with pytest.raises(StackError, match="slot 16"):
        pcsc_stack.reader_for_slot(16)


def test_reader_conf_declares_each_entry() -> None:
    text = reader_conf()
    assert text.count("FRIENDLYNAME") == len(OWN_ENTRIES) == 8
    assert 'FRIENDLYNAME "Virtual PCD B"' in text
    assert "DEVICENAME   /dev/null:0x8C7D" in text
    assert "CHANNELID    0x8C89" in text


def test_slot_map_ignores_foreign_and_out_of_range_readers() -> None:
    readers = [
        "Virtual PCD 00 00",
        "Virtual PCD 00 01",
        "Virtual PCD C 00 01",
        "Virtual PCD 00 02",
        "ACS ACR122U 00 00",
        "Virtual PCD Z 00 00",
    ]
    assert vpcd_slot_map(readers) == {
        0: "Virtual PCD 00 00",
        1: "Virtual PCD 00 01",
        5: "Virtual PCD C 00 01",
    }


def test_missing_readers_time_out_with_the_log_tail(tmp_path: Path) -> None:
    stack = PcscStack(tmp_path, min_slots=2, deadline=0.3, lister=lambda: ["Other Reader 00 00"])
    if not pcscd_running():
        pytest.fail("the session fixture keeps pcscd running")
    with pytest.raises(StackError, match="did not appear within"):
        stack.start()
    assert not stack.started


def test_stale_socket_file_is_not_a_running_pcscd(tmp_path: Path) -> None:
    path = tmp_path / "pcscd.comm"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()
    assert path.exists()
    assert not pcscd_running(path)
    assert not pcscd_running(tmp_path / "absent.comm")


def test_stop_never_touches_a_pcscd_it_did_not_start(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    other = PcscStack(tmp_path, min_slots=2).start()
    assert not other.started
    other.stop()
    assert not other.stop_detached()
    assert pcscd_running()


def test_owner_record_with_a_foreign_pid_is_discarded(tmp_path: Path) -> None:
    stack = PcscStack(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    stack.owner_path.write_text('{"pid": 1, "conf_dir": "/nonexistent"}', encoding="utf-8")
    assert not stack.stop_detached()
    assert not stack.owner_path.exists()


def test_pcscd_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    stack = PcscStack(tmp_path, pcscd="/bin/false", sock_path=tmp_path / "none.comm", deadline=5.0)
    with pytest.raises(StackError, match="exited with status 1"):
        stack.start()
    assert (tmp_path / "reader.conf.d" / "sscard-vpcd").read_text().count("LIBPATH") == 8


def test_missing_pcscd_binary_is_reported(tmp_path: Path) -> None:
    stack = PcscStack(tmp_path, pcscd=str(tmp_path / "no-pcscd"), sock_path=tmp_path / "none.comm")
    with pytest.raises(StackError, match="run scripts/setup"):
        stack.start()


class _Card:
    def __init__(self, atr: bytes) -> None:
        self._atr = atr

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        pass

    def power_off(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"


def _wait_atr(reader: str, atr: bytes | None, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if (state.atr or None) == atr and state.present == (atr is not None):
            return
        assert time.monotonic() < deadline, f"{reader}: ATR did not become {atr!r}"
        time.sleep(0.02)


def test_slots_of_different_driver_entries_hold_cards_independently(pcsc_stack: PcscStack) -> None:
    """Slot 0 of entry G (slot 12) and slot 1 of entry H (slot 15) at once."""
    from emulator.vpcd import VpcdLink

    atr_a = bytes.fromhex("3B6A0000424A5353433300039000")
    atr_b = bytes.fromhex("3B6A0000424A5353433200039000")
    with VpcdLink(_Card(atr_a), slot=12), VpcdLink(_Card(atr_b), slot=15):
        _wait_atr(pcsc_stack.reader_for_slot(12), atr_a)
        _wait_atr(pcsc_stack.reader_for_slot(15), atr_b)
    _wait_atr(pcsc_stack.reader_for_slot(12), None)
    _wait_atr(pcsc_stack.reader_for_slot(15), None)


def test_each_entry_after_the_first_loads_its_own_driver_copy(tmp_path: Path) -> None:
    stack = PcscStack(tmp_path)
    paths = stack._driver_copies()
    assert len(set(paths)) == len(OWN_ENTRIES)
    assert all(p.read_bytes() == paths[0].read_bytes() for p in paths)
    assert stack._driver_copies() == paths


def _record(stack: PcscStack, **fields: object) -> None:
    import json

    stack.run_dir.mkdir(parents=True, exist_ok=True)
    stack.owner_path.write_text(json.dumps(fields), encoding="utf-8")


def test_orphan_of_a_dead_run_is_adopted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stack = PcscStack(tmp_path)
    monkeypatch.setattr(stack, "_owned_pid", lambda: 4242)
    _record(stack, pid=4242, conf_dir=str(stack.conf_dir), detached=False, starter=dead.pid)
    stack._adopt_orphan()
    assert stack.started and stack._pid == 4242


@pytest.mark.parametrize(
    "fields",
    [
        {"detached": True},  # scripts/pcscd-up owns it
        {"detached": False, "starter": None},  # starter filled in below: a live run
        {},  # record from an older version: leave alone
    ],
)
def test_pcscd_of_a_live_run_or_detached_is_not_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, object]
) -> None:
    import os

    stack = PcscStack(tmp_path)
    monkeypatch.setattr(stack, "_owned_pid", lambda: 4242)
    if "starter" in fields:
        fields = {**fields, "starter": os.getpid()}
    _record(stack, pid=4242, conf_dir=str(stack.conf_dir), **fields)
    stack._adopt_orphan()
    assert not stack.started


@pytest.mark.parametrize(
    ("fields", "stopped"),
    [
        ({"detached": True}, True),  # scripts/pcscd-up started it
        ({"detached": False, "starter": "self"}, False),  # a live test run owns it
        ({"detached": False, "starter": "dead"}, True),  # orphan of a killed run
        ({}, False),  # record from an older version: leave alone
    ],
)
def test_pcscd_down_stops_only_its_own_or_an_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, object], stopped: bool
) -> None:
    import os
    import subprocess

    stack = PcscStack(tmp_path)
    signalled: list[int] = []
    monkeypatch.setattr(stack, "_owned_pid", lambda: 4242)
    monkeypatch.setattr(stack, "_terminate", signalled.append)
    if fields.get("starter") == "self":
        fields = {**fields, "starter": os.getpid()}
    elif fields.get("starter") == "dead":
        dead = subprocess.Popen(["true"])
        dead.wait()
        fields = {**fields, "starter": dead.pid}
    _record(stack, pid=4242, conf_dir=str(stack.conf_dir), **fields)
    assert stack.stop_detached() is stopped
    assert signalled == ([4242] if stopped else [])
    assert stack.owner_path.exists() is not stopped
