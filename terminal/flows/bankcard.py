"""The bank card number of the card's financial application, for display.

EMV selection, read only (docs/wallet.md): SELECT the PPSE
(``2PAY.SYS.DDF01``, contactless first) or the PSE (``1PAY.SYS.DDF01``,
contact first, directory records by READ RECORD), take the directory entry
with the highest priority, SELECT that application, GET PROCESSING OPTIONS
(the PDOL, if any, filled with zeros), READ RECORD along the AFL until tag
``5A`` (the PAN) appears.  The number is masked as counter systems show it
(first 6 and last 4 digits, ``terminal/data/wallet.toml`` [bankcard]); the
full number is never returned, logged or journaled.  The social security
application is selected again afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from apdu.command import CommandApdu
from apdu.errors import CardError, FileNotFound, ProtocolError, RecordNotFound, TransportError
from apdu.tlv import Tlv, parse, parse_one
from card_model._data import load_data as load_model_data
from card_model.financial import PPSE_NAME, PSE_NAME
from card_model.values import partner_banks
from terminal._data import load_data
from terminal.flows._common import journal_scope
from terminal.flows.wallet_errors import BankCardNotAvailable
from terminal.flows.wallet_results import BankCardInfo
from terminal.session import CardSession

__all__ = ["mask_pan", "read_bank_card"]

LE_ALL = 256
TAG_FCI = 0x6F
TAG_DIRECTORY = 0xBF0C
TAG_ENTRY = 0x61
TAG_AID = 0x4F
TAG_LABEL = 0x50
TAG_PRIORITY = 0x87
TAG_SFI = 0x88
TAG_PDOL = 0x9F38
TAG_FORMAT1 = 0x80
TAG_FORMAT2 = 0x77
TAG_AFL = 0x94
TAG_PAN = 0x5A
TAG_EXPIRY = 0x5F24
TAG_COMMAND_TEMPLATE = 0x83
MAX_DIRECTORY_RECORDS = 16


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("wallet")["bankcard"]
    return table


def mask_pan(pan: str) -> str:
    """``6291131234561234`` -> ``629113******1234`` (first / last digits from the data file)."""
    settings = _settings()
    first, last = int(settings["mask_first"]), int(settings["mask_last"])
    if len(pan) <= first + last:
        return str(settings["mask_char"]) * len(pan)
    return pan[:first] + str(settings["mask_char"]) * (len(pan) - first - last) + pan[-last:]


@dataclass(frozen=True, slots=True)
class _Entry:
    aid: bytes
    label: str
    priority: int


def _entries(objects: list[Tlv]) -> list[_Entry]:
    out = []
    for obj in objects:
        for entry in obj.find_all(TAG_ENTRY):
            aid = entry.find(TAG_AID)
            if aid is None:
                continue
            label = entry.find(TAG_LABEL)
            priority = entry.find(TAG_PRIORITY)
            out.append(
                _Entry(
                    aid.value,
                    label.value.decode("ascii", "replace") if label is not None else "",
                    (priority.value[0] & 0x0F) if priority is not None and priority.value else 15,
                )
            )
    return out


def _select(session: CardSession, name: bytes) -> Tlv | None:
    try:
        answer = session.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, name, le=LE_ALL))
    except FileNotFound:
        return None
    return parse_one(answer.data) if answer.data else None


def _ppse(session: CardSession) -> list[_Entry]:
    fci = _select(session, PPSE_NAME)
    directory = None if fci is None else fci.find(TAG_DIRECTORY)
    return [] if directory is None else _entries([directory])


def _pse(session: CardSession) -> list[_Entry]:
    fci = _select(session, PSE_NAME)
    sfi = None if fci is None else fci.find(TAG_SFI)
    if sfi is None or len(sfi.value) != 1:
        return []
    found: list[_Entry] = []
    for number in range(1, MAX_DIRECTORY_RECORDS + 1):
        try:
            raw = session.send(CommandApdu(0x00, 0xB2, number, (sfi.value[0] << 3) | 0x04, le=LE_ALL)).data
        except RecordNotFound:
            break
        found.extend(_entries(parse(raw, skip_padding=True)))
    return found


def _pdol_data(fci: Tlv | None) -> bytes:
    """``83 L <zeros>`` for the PDOL of the FCI (``83 00`` without one)."""
    pdol = None if fci is None else fci.find(TAG_PDOL)
    total = 0
    if pdol is not None:
        raw, index = pdol.value, 0
        while index < len(raw):
            index += 2 if raw[index] & 0x1F == 0x1F else 1
            if index >= len(raw):
                raise ProtocolError("PDOL: truncated")
            total += raw[index]
            index += 1
    return Tlv(TAG_COMMAND_TEMPLATE, bytes(total)).encode()


def _afl(answer: bytes) -> list[tuple[int, int, int]]:
    top = parse_one(answer)
    if top.tag == TAG_FORMAT1:
        raw = top.value[2:]
    elif top.tag == TAG_FORMAT2:
        afl = top.find(TAG_AFL)
        raw = b"" if afl is None else afl.value
    else:
        raise ProtocolError("GET PROCESSING OPTIONS: unknown answer template")
    if len(raw) % 4:
        raise ProtocolError("GET PROCESSING OPTIONS: the AFL is not a multiple of 4 bytes")
    return [(raw[i] >> 3, raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 4)]


def _records(session: CardSession, afl: list[tuple[int, int, int]]) -> Iterator[Tlv]:
    for sfi, first, last in afl:
        for number in range(first, last + 1):
            raw = session.send(CommandApdu(0x00, 0xB2, number, (sfi << 3) | 0x04, le=LE_ALL)).data
            yield from parse(raw, skip_padding=True)


def _pan_text(raw: bytes) -> str:
    text = raw.hex().upper().rstrip("F")
    if not text.isdigit() or not 12 <= len(text) <= 19:
        raise BankCardNotAvailable("tag 5A is not a bank card number")
    return text


@cache
def _banks_by_iin() -> dict[str, tuple[str, str]]:
    names = {bank.code: bank.name_zh for bank in partner_banks()}
    return {
        str(iin): (code, names.get(code, code))
        for code, iin in load_model_data("financial.toml")["iin"].items()
    }


@contextlib.contextmanager
def _then_ssse(session: CardSession) -> Iterator[None]:
    try:
        yield
    except TransportError:
        raise
    except BaseException:
        with contextlib.suppress(TransportError, CardError):
            session.select_application(check=False)
        raise
    with contextlib.suppress(TransportError, CardError):
        session.select_application(check=False)


def read_bank_card(session: CardSession) -> BankCardInfo:
    """The masked bank card number of the financial application (see the module docstring)."""
    contactless = session.info.interface == "contactless"
    with session.transaction(), journal_scope(session, "bankcard.read") as scope, _then_ssse(session):
        order = ((_ppse, "ppse"), (_pse, "pse")) if contactless else ((_pse, "pse"), (_ppse, "ppse"))
        entries: list[_Entry] = []
        source = ""
        for finder, name in order:
            entries = finder(session)
            if entries:
                source = name
                break
        if not entries:
            raise BankCardNotAvailable("no PPSE / PSE directory entry")
        entry = min(entries, key=lambda e: e.priority)
        fci = _select(session, entry.aid)
        if fci is None:
            raise BankCardNotAvailable("the financial application cannot be selected")
        gpo = session.send(CommandApdu(0x80, 0xA8, 0x00, 0x00, _pdol_data(fci), le=LE_ALL)).data
        pan = ""
        expiry = None
        for obj in _records(session, _afl(gpo)):
            found = obj.find(TAG_PAN)
            if found is not None and not pan:
                pan = _pan_text(found.value)
            date = obj.find(TAG_EXPIRY)
            if date is not None and len(date.value) == 3 and date.value.hex().isdigit():
                expiry = f"20{date.value.hex()[0:2]}-{date.value.hex()[2:4]}"
        if not pan:
            raise BankCardNotAvailable("no tag 5A in the application records")
        bank = next(
            ((code, name) for iin, (code, name) in _banks_by_iin().items() if pan.startswith(iin)), None
        )
        info = BankCardInfo(
            pan_masked=mask_pan(pan),
            last4=pan[-4:],
            length=len(pan),
            aid=entry.aid.hex().upper(),
            label=entry.label,
            bank=bank[0] if bank else None,
            bank_name=bank[1] if bank else None,
            expiry=expiry,
            source=source,
        )
        scope.add(aid=info.aid, pan_masked=info.pan_masked)
        return info
