"""Helpers of the CLI tests: vpcd slots 8-11 (tests/conftest.py), cards, the runner.

Slots: 8 the card under test, 9 the PSAM, 10 a second card (foreign,
blocked), 11 the demo's PSAM (the demo runs with --slot 10 --psam-slot 11).
Every helper that inserts a card removes it and waits until the reader is
empty again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from click.testing import CliRunner, Result

from apdu.pcsc import reader_states
from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.vpcd import VirtualCard, VpcdLink
from terminal._data import load_data
from terminal.cli import cli

CARD_SLOT = 8
PSAM_SLOT = 9
OTHER_SLOT = 10
SPARE_SLOT = 11

INITIAL_PIN = "211008"
NEW_PIN = "246813"
WRONG_PIN = "000000"
SSN = "110102197305211008"
# the demo's own PINs (terminal/data/demo.toml): new one and wrong ones
DEMO_PINS = (
    str(load_data("demo")["demo"]["new_pin"]),
    *(str(pin) for pin in load_data("demo")["demo"]["wrong_pins"]),
)
FOREIGN_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


class ForeignCard:
    """Not a social security card: 6A82 to the SSSE SELECT, 6D00 to anything else."""

    def atr(self) -> bytes:
        return FOREIGN_ATR

    def power_on(self) -> None:
        return None

    def power_off(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def process(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xA4:
            return bytes.fromhex("6A82")
        return bytes.fromhex("6D00")


class SwappableCard:
    """A card in a vpcd slot whose card OS a test can replace without pulling
    it (pcscd notices an insertion or removal only every ~0.4 s).  The card
    must keep the ATR (a generation-3 card OS in another state: same ATR)."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    def atr(self) -> bytes:
        return self.card.atr()

    def power_on(self) -> None:
        self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)


def card_os(life_cycle: LifeCycle | None = None, generation: int = 3) -> CardOS:
    return CardOS(demo_card_image(generation, life_cycle=life_cycle))


def wait_for_card(reader: str, present: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if state.present == present and (not present or state.atr):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{reader}: card present={state.present}, expected {present}")
        time.sleep(0.01)


@contextmanager
def inserted(card: VirtualCard, slot: int, reader: str) -> Iterator[VpcdLink]:
    """``card`` in vpcd slot ``slot`` (PC/SC reader ``reader``) for the block."""
    assert slot in (CARD_SLOT, PSAM_SLOT, OTHER_SLOT, SPARE_SLOT)
    link = VpcdLink(card, slot)
    link.insert()
    try:
        wait_for_card(reader, True)
        yield link
    finally:
        link.remove()
        wait_for_card(reader, False)


def run(args: Sequence[str], *, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """``sscard ARGS`` through click's runner (stdout and stderr apart)."""
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def json_out(result: Result) -> Any:
    """The one JSON document on stdout."""
    return json.loads(result.stdout)


def json_err(result: Result) -> Any:
    """The JSON error body on stderr (the last line; log lines may precede it)."""
    return json.loads(result.stderr.strip().splitlines()[-1])


def assert_no_pin(texts: Sequence[str], pins: Sequence[str]) -> None:
    """No PIN appears as a number of its own (it may be part of a longer number,
    e.g. the initial PIN as the end of the SSN) in any of ``texts``."""
    for pin in pins:
        pattern = re.compile(rf"(?<![0-9A-Fa-f]){re.escape(pin)}(?![0-9A-Fa-f])")
        for text in texts:
            assert not pattern.search(text), f"a PIN appears in the output: {text!r}"
