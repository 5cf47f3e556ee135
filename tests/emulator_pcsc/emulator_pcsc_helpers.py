"""Helpers of the emulator end-to-end tests (pcscd + vpcd + pyscard).

The area owns vpcd slots 0-3 only (tests/conftest.py SLOT_RANGES["emulator_pcsc"]).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from apdu.errors import SscardError
from apdu.pcsc import PcscTransport, reader_states

SLOTS = range(0, 4)
ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")

SSSE_DF_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
SELECT_SSSE = bytes.fromhex("00A404000F") + SSSE_DF_NAME + b"\x00"
READ_EF05_ALL = bytes.fromhex("00B2012D00")
READ_EF05_TAG07 = bytes.fromhex("00B2072C00")
WRONG_VERIFY = bytes.fromhex("0020000103999999")
PIN_STATUS = bytes.fromhex("80CADF0200")
GEN3_CONTACT_ATR = bytes.fromhex("3B6A0000424A5353433300039000")
GEN3_CONTACTLESS_ATR = bytes.fromhex("3B8A8001424A5353433300039000E0")
GEN2_ATR = bytes.fromhex("3B6A0000424A5353433200029000")
PSAM_ATR = bytes.fromhex("3B6A0000424A5053414D00019000")


def wait_reader(reader: str, atr: bytes | None, timeout: float = 6.0) -> None:
    """Wait until ``reader`` holds a card with ``atr`` (None: until it is empty)."""
    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if atr is None and state.empty:
            return
        if atr is not None and state.present and state.atr == atr:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{reader}: state {state.event_state:#x} ATR {state.atr!r}, wanted {atr!r}")
        time.sleep(0.01)


def connected(reader: str, atr: bytes) -> PcscTransport:
    """A PC/SC connection to the card with ``atr`` once pcscd sees it."""
    wait_reader(reader, atr)
    transport = PcscTransport(reader)
    transport.connect()
    return transport


def transmit_fails(transport: PcscTransport, apdu: bytes) -> SscardError:
    """Send ``apdu`` and return the transport error it must raise."""
    try:
        answer = transport.transmit(apdu)
    except SscardError as exc:
        return exc
    raise AssertionError(f"expected a transport error, got {answer.hex()}")


def no_answer(transport: PcscTransport, apdu: bytes) -> None:
    """Send ``apdu`` to a card that goes away without answering.  vpcd then
    completes the transmit with an empty answer (the terminal's link layer
    turns that into CardRemovedError); a PC/SC error is accepted too."""
    try:
        answer = transport.transmit(apdu)
    except SscardError:
        return
    assert answer == b"", f"expected no answer, got {answer.hex()}"


def hexs(data: bytes) -> str:
    return data.hex().upper()


def emulator_command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m emulator ARGS`` (the real console entry) and capture it."""
    return subprocess.run(
        [PYTHON, "-m", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def start_host(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start ``python -m emulator --json run --no-pcscd ARGS``; returns the
    process and its ready object (pid, control_socket, slots)."""
    process = subprocess.Popen(
        [PYTHON, "-m", "emulator", "--json", "run", "--no-pcscd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        assert process.stderr is not None
        raise AssertionError(f"emulator run exited {process.returncode}: {process.stderr.read()}")
    return process, json.loads(line)


def stop_host(process: subprocess.Popen[str], signal_number: int | None = None) -> int:
    """Stop a host started by :func:`start_host` (SIGTERM unless told) and reap it."""
    import signal

    if process.poll() is None:
        process.send_signal(signal_number if signal_number is not None else signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
