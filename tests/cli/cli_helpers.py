"""Helpers of the CLI tests: vpcd slots 8-11 (tests/conftest.py), cards, the runner.

Slots: 8 the card under test, 9 the PSAM, 10 a second card (foreign,
blocked), 11 the demo's PSAM (the demo runs with --slot 10 --psam-slot 11).
Every helper that inserts a card removes it and waits until the reader is
empty again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from click.testing import CliRunner, Result

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.foreign import FOREIGN_ATR as FOREIGN_ATR
from emulator.foreign import ForeignCard as ForeignCard
from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card
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


def card_os(life_cycle: LifeCycle | None = None, generation: int = 3) -> CardOS:
    return CardOS(demo_card_image(generation, life_cycle=life_cycle))


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
