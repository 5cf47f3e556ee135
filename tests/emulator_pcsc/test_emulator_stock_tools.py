"""The stock PC/SC tools see the virtual card as a card: ``opensc-tool``
selects the SSSE and reads EF05 through the shared stack, ``pcsc_scan``
shows the ATR (on a private 2-reader pcscd, see tests/private_pcscd.py)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_pcsc_helpers import GEN3_CONTACT_ATR, GEN3_CONTACTLESS_ATR, SSSE_DF_NAME, wait_reader
from private_pcscd import PrivatePcscd

from card_model.demo import demo_card_image
from emulator.card_os import CardOS, Interface
from emulator.runner import CardHost, VirtualSlot
from emulator.stack import VPCD_BASE_PORT, PcscStack

# EF05 of the demo gen3 card (docs/card-model.md; ../shared/spec/social-security-card.md):
EF05 = {
    0x01: "110102D156000005E0CF52641D730D02",  # card identification code
    0x02: "31",  # card type "1"
    0x03: "332E3030",  # specification version "3.00"
    0x04: "110000000000000000000003",  # initialising organisation
    0x05: "20250301",  # issue date
    0x06: "20350228",  # expiry date
    0x07: "583030303030303139",  # card number "X00000019"
}


def _opensc_reader_index(reader: str) -> str:
    listing = subprocess.run(["opensc-tool", "-l"], capture_output=True, text=True, timeout=30, check=True)
    for line in listing.stdout.splitlines():
        if line.rstrip().endswith(reader):
            return line.split()[0]
    raise AssertionError(f"opensc-tool does not list {reader}:\n{listing.stdout}")


def _opensc_answers(output: str) -> list[tuple[str, str]]:
    """(SW, data hex) for every 'Received' block of opensc-tool's output."""
    answers: list[tuple[str, str]] = []
    blocks = re.split(r"^Received \(SW1=0x(..), SW2=0x(..)\):?\n", output, flags=re.MULTILINE)
    for index in range(1, len(blocks), 3):
        sw = (blocks[index] + blocks[index + 1]).upper()
        body = blocks[index + 2].split("Sending:")[0]
        data = "".join(re.findall(r"^((?:[0-9A-F]{2} )+)", body, flags=re.MULTILINE)).replace(" ", "")
        answers.append((sw, data))
    return answers


def test_opensc_tool_selects_the_ssse_and_reads_ef05(pcsc_stack: PcscStack, host: CardHost) -> None:
    reader = pcsc_stack.reader_for_slot(0)
    host.add(0)
    wait_reader(reader, GEN3_CONTACT_ATR)
    apdus = ["00A404000F" + SSSE_DF_NAME.hex().upper() + "00", "00B2012D00"]
    apdus += [f"00B2{tag:02X}2C00" for tag in EF05]
    command = ["opensc-tool", "--reader", _opensc_reader_index(reader), "-c", "default"]
    for apdu in apdus:
        command += ["--send-apdu", apdu]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    answers = _opensc_answers(result.stdout)
    assert [sw for sw, _ in answers] == ["9000"] * len(apdus)
    assert answers[0][1] == "6F17840F" + SSSE_DF_NAME.hex().upper() + "A5049F080103"
    records = "".join(f"{tag:02X}{len(value) // 2:02X}{value}" for tag, value in EF05.items())
    assert answers[1][1] == records
    for (tag, value), (_, data) in zip(EF05.items(), answers[2:], strict=True):
        assert data == f"{tag:02X}{len(value) // 2:02X}{value}"


@pytest.fixture
def private_pcscd(tmp_path: Path) -> Iterator[PrivatePcscd]:
    daemon = PrivatePcscd(tmp_path / "private", port=VPCD_BASE_PORT + 44)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _pcsc_scan(daemon: PrivatePcscd) -> str:
    result = subprocess.run(
        ["pcsc_scan", "-n", "-t", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=daemon.client_env,
        check=False,
    )
    return result.stdout + result.stderr


class _PowerWatch:
    """A card that tells when pcscd powered it (it then knows the card)."""

    def __init__(self, card: CardOS) -> None:
        self.card = card
        self.powered = threading.Event()

    def atr(self) -> bytes:
        return self.card.atr()

    def power_on(self) -> None:
        self.card.power_on()
        self.powered.set()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> None:
        self.card.reset()
        self.powered.set()

    def process(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)


@pytest.mark.parametrize(
    ("interface", "atr"),
    [("contact", GEN3_CONTACT_ATR), ("contactless", GEN3_CONTACTLESS_ATR)],
    ids=["contact", "contactless"],
)
def test_pcsc_scan_shows_the_atr(private_pcscd: PrivatePcscd, interface: Interface, atr: bytes) -> None:
    watched = _PowerWatch(CardOS(demo_card_image(), interface=interface))
    card = VirtualSlot(private_pcscd.slot, watched)
    card.insert(timeout=10.0)
    try:
        assert watched.powered.wait(10.0), "the private pcscd never powered the card"
        spaced = " ".join(f"{byte:02X}" for byte in atr)
        output = _pcsc_scan(private_pcscd)
        assert private_pcscd.reader in output
        assert f"ATR: {spaced}" in output, output
        assert "Card inserted" in output
    finally:
        card.remove()
