"""A minimal financial (bank) application on the virtual card, enough for a
terminal to read the bank card number (docs/card-os.md §12):

* SELECT ``2PAY.SYS.DDF01`` (PPSE): FCI with the directory entry
  ``BF0C { 61 { 4F <AID> 50 <label> 87 <priority> } }``;
* SELECT ``1PAY.SYS.DDF01`` (PSE): FCI with the directory SFI (``88``);
  READ RECORD 1 of that SFI: ``70 { 61 { 4F 50 87 } }``;
* SELECT <AID>: FCI ``6F { 84 <AID> A5 { 50 87 5F2D } }``;
* GET PROCESSING OPTIONS ``80 A8 00 00 02 83 00``: ``80 06 <AIP> <AFL>``;
* READ RECORD of the application file (after GPO, else ``6985``): the
  record kept in the image (``70 { 5A <PAN> 5F24 ... }``).

No PDOL, no offline data authentication, nothing writable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from apdu.tlv import Tlv
from card_model.financial import PPSE_NAME, PSE_NAME, FinancialSpec
from emulator.card_os.command import Command
from emulator.card_os.response import SHORT_MAX
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_FILE_NOT_FOUND,
    SW_RECORD_NOT_FOUND,
    SW_WRONG_DATA,
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["FinancialSession", "get_processing_options", "is_financial_name", "read_record", "select"]

Level = Literal["pse", "ppse", "application"]
LANGUAGE = b"zh"
AIP = b"\x00\x00"
GPO_EMPTY_PDOL = b"\x83\x00"
TAG_FCI = 0x6F
TAG_DF_NAME = 0x84
TAG_PROPRIETARY = 0xA5
TAG_SFI = 0x88
TAG_LANGUAGE = 0x5F2D
TAG_DIRECTORY = 0xBF0C
TAG_ENTRY = 0x61
TAG_AID = 0x4F
TAG_LABEL = 0x50
TAG_PRIORITY = 0x87
TAG_RECORD = 0x70
TAG_FORMAT1 = 0x80


@dataclass(slots=True)
class FinancialSession:
    """The PSE, the PPSE or the financial application is current."""

    spec: FinancialSpec
    level: Level
    processing: bool = False


def is_financial_name(spec: FinancialSpec, name: bytes) -> bool:
    return name in (PSE_NAME, PPSE_NAME, spec.aid)


def _entry(spec: FinancialSpec) -> Tlv:
    return Tlv(
        TAG_ENTRY,
        children=(
            Tlv(TAG_AID, spec.aid),
            Tlv(TAG_LABEL, spec.label.encode("ascii")),
            Tlv(TAG_PRIORITY, bytes((spec.priority,))),
        ),
    )


def _fci(name: bytes, proprietary: tuple[Tlv, ...]) -> bytes:
    return Tlv(
        TAG_FCI, children=(Tlv(TAG_DF_NAME, name), Tlv(TAG_PROPRIETARY, children=proprietary))
    ).encode()


def select(card: CardOS, cmd: Command) -> bytes:
    spec = card.profile.applications.financial
    if spec is None or spec.record_fid not in card.image.record_files:
        raise CardStatus(SW_FILE_NOT_FOUND)
    name = cmd.data
    if name == PPSE_NAME:
        level: Level = "ppse"
        fci = _fci(name, (Tlv(TAG_DIRECTORY, children=(_entry(spec),)),))
    elif name == PSE_NAME:
        level = "pse"
        fci = _fci(name, (Tlv(TAG_SFI, bytes((spec.pse_sfi,))), Tlv(TAG_LANGUAGE, LANGUAGE)))
    else:
        level = "application"
        fci = _fci(
            name,
            (
                Tlv(TAG_LABEL, spec.label.encode("ascii")),
                Tlv(TAG_PRIORITY, bytes((spec.priority,))),
                Tlv(TAG_LANGUAGE, LANGUAGE),
            ),
        )
    card.session.application = FinancialSession(spec, level)
    card.session.current_ef = None
    return b"" if cmd.p2 == 0x0C else fci


def _session(card: CardOS) -> FinancialSession:
    app = card.session.application
    if not isinstance(app, FinancialSession):
        raise CardStatus(SW_CONDITIONS)
    return app


def get_processing_options(card: CardOS, cmd: Command) -> bytes:
    """``80 A8 00 00 02 83 00`` (no PDOL) -> format 1: AIP and AFL."""
    app = _session(card)
    if app.level != "application":
        raise CardStatus(SW_CONDITIONS)
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    if cmd.data != GPO_EMPTY_PDOL:
        raise CardStatus(SW_WRONG_LENGTH if not cmd.data else SW_WRONG_DATA)
    afl = bytes((app.spec.record_sfi << 3, 1, 1, 0))
    app.processing = True
    out = Tlv(TAG_FORMAT1, AIP + afl).encode()
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != len(out):
        raise CardStatus(SW_WRONG_LE | len(out))
    return out


def read_record(card: CardOS, cmd: Command) -> bytes:
    """READ RECORD ``00 B2 <rec> <SFI<<3 | 4>``: the PSE directory or, after
    GET PROCESSING OPTIONS, the application records."""
    app = card.session.application
    assert isinstance(app, FinancialSession)
    spec = app.spec
    if cmd.p2 & 0x07 != 4 or not cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    sfi = cmd.p2 >> 3
    if app.level == "pse" and sfi == spec.pse_sfi:
        if cmd.p1 != 1:
            raise CardStatus(SW_RECORD_NOT_FOUND)
        out = Tlv(TAG_RECORD, children=(_entry(spec),)).encode()
    elif app.level == "application" and sfi == spec.record_sfi:
        if not app.processing:
            raise CardStatus(SW_CONDITIONS)
        value = card.image.record_files[spec.record_fid].records.get(cmd.p1)
        if value is None:
            raise CardStatus(SW_RECORD_NOT_FOUND)
        out = value
    else:
        raise CardStatus(SW_FILE_NOT_FOUND)
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != len(out):
        raise CardStatus(SW_WRONG_LE | (len(out) & 0xFF))
    return out
