"""Fixtures of the CLI tests (vpcd slots 8-11 only; see cli_helpers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import CARD_SLOT, OTHER_SLOT, PSAM_SLOT, SPARE_SLOT, card_os, inserted

from card_model.demo import demo_ca, demo_key_set, demo_psam_image
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from emulator.vpcd import CardWrapper


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration, registry or data directory of the machine leaks in."""
    monkeypatch.delenv("SSCARD_CONFIG", raising=False)
    monkeypatch.delenv("SSCARD_DB_URL", raising=False)
    monkeypatch.setenv("SSCARD_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def card_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(CARD_SLOT)


@pytest.fixture
def psam_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(PSAM_SLOT)


@pytest.fixture
def other_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(OTHER_SLOT)


@pytest.fixture
def spare_reader(pcsc_stack: PcscStack) -> str:
    return pcsc_stack.reader_for_slot(SPARE_SLOT)


@pytest.fixture(scope="module")
def card_slot(pcsc_stack: PcscStack) -> Iterator[CardWrapper]:
    """Slot 8 holds a card for the whole module; each test puts a fresh card OS in it."""
    holder = CardWrapper(card_os())
    with inserted(holder, CARD_SLOT, pcsc_stack.reader_for_slot(CARD_SLOT)):
        yield holder


@pytest.fixture(scope="module")
def psam_slot(pcsc_stack: PcscStack) -> Iterator[str]:
    """The demo PSAM in slot 9 for the whole module (it keeps no state between commands)."""
    reader = pcsc_stack.reader_for_slot(PSAM_SLOT)
    with inserted(PsamCard(demo_psam_image()), PSAM_SLOT, reader):
        yield reader


@pytest.fixture
def put_card(card_slot: CardWrapper, card_reader: str) -> Callable[[CardOS], str]:
    """``put_card(card_os(...))``: that card OS in slot 8; returns the reader name."""

    def put(card: CardOS) -> str:
        card_slot.card = card
        return card_reader

    return put


@pytest.fixture
def card(put_card: Callable[[CardOS], str]) -> str:
    """A fresh demo generation-3 card (personalised, initial PIN) in slot 8."""
    return put_card(card_os())


@pytest.fixture
def psam(psam_slot: str) -> str:
    return psam_slot


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The demo issuer key set as a development key file."""
    path = tmp_path / "demo-keys.toml"
    demo_key_set().save(path)
    return path


@pytest.fixture
def anchor_file(tmp_path: Path) -> Path:
    """The demo root CA certificate (PEM)."""
    path = tmp_path / "demo-ca.pem"
    path.write_bytes(demo_ca().certificate.to_pem())
    return path
