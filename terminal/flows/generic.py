"""Generic read / write by national file address (``iReadCard`` / ``iWriteCard``).

Address (``pFileAddr``): ``3F00EF06|08|09|4E|$``: the file path (the MF
``3F00`` then the EF, 4 hex digits each), then the record tags (2 hex
digits), each field followed by ``|``, ending with ``$``.  Card information
(``pCardInfo``): ``card id code|card no|``; when given it must match the
card (-22).  Write data (``pWriteData``): ``value|value|``, one per tag.

Values as national text: ASCII / GBK text as is (padding removed), BCD codes
as digits, dates ``YYYYMMDD``, binary and the card identification code as
upper-case hex.  Reads authenticate as the profile asks (EF06/EF07: RK);
writes go under secure messaging with the maintenance key (AMK), one
``UPDATE RECORD 04 DC`` per tag, each with its own challenge.

Errors: a malformed address or data -> :class:`~apdu.errors.InvalidInput`
(``parameter`` -14, ``chars`` -41, ``length`` -42); a file the profile does
not have or cannot write, a tag not declared for it -> -14; card data that
do not match -> :class:`~terminal.errors.CardDataMismatch` (-22), a
malformed card identification code in them -> ``InvalidCardIdCode`` (-20).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apdu.command import CommandApdu
from apdu.elements import ELEMENTS, CardIdentification, Element
from apdu.errors import InvalidInput
from apdu.tlv import encode_record, parse_records
from card_model.keys import KeyRole
from card_model.profile import FileSpec
from card_model.values import CardIdCode
from sm_crypto.sm3 import sm3
from terminal.errors import CardDataMismatch
from terminal.flows._common import authenticate_for, journal_scope
from terminal.flows.results import GenericReadResult, GenericWriteResult
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = [
    "FileAddress",
    "check_card_info",
    "parse_card_info",
    "parse_file_address",
    "parse_write_data",
    "read_generic",
    "record_check",
    "write_generic",
]

MF = "3F00"
TERMINATOR = "$"
RECORD_ONE = 0x04
CHECK_BYTES = 2


@dataclass(frozen=True, slots=True)
class FileAddress:
    """A parsed national file address: the EF (FID and name) and the record tags."""

    fid: int
    tags: tuple[int, ...]

    @property
    def file(self) -> str:
        return f"{self.fid:04X}"

    def text(self) -> str:
        return f"{MF}{self.file}|" + "".join(f"{t:02X}|" for t in self.tags) + TERMINATOR


def _hex_field(text: str, digits: int, what: str) -> int:
    if any(c not in "0123456789ABCDEFabcdef" for c in text):
        raise InvalidInput(f"file address: {what} is not hexadecimal", kind="chars")
    if len(text) != digits:
        raise InvalidInput(f"file address: {what} must be {digits} hex digits", kind="length")
    return int(text, 16)


def parse_file_address(address: str) -> FileAddress:
    """Parse ``3F00EF06|08|09|$`` strictly (see the module docstring)."""
    if not isinstance(address, str):
        raise InvalidInput("file address: text expected", kind="parameter")
    text = address.strip()
    if not text.endswith(TERMINATOR):
        raise InvalidInput("file address: must end with '$'", kind="parameter")
    body = text[: -len(TERMINATOR)]
    if not body.endswith("|"):
        raise InvalidInput("file address: every field must be followed by '|'", kind="parameter")
    fields = body[:-1].split("|")
    path = fields[0]
    if len(path) % 4:
        raise InvalidInput("file address: the path is made of 4-digit file identifiers", kind="length")
    ids = [_hex_field(path[i : i + 4], 4, "file identifier") for i in range(0, len(path), 4)]
    if len(ids) != 2 or ids[0] != int(MF, 16):
        raise InvalidInput("file address: the path must be 3F00 followed by one EF", kind="parameter")
    tags = tuple(_hex_field(field, 2, "record tag") for field in fields[1:])
    if not tags:
        raise InvalidInput("file address: no record tag", kind="parameter")
    if any(tag in (0x00, 0xFF) for tag in tags):
        raise InvalidInput("file address: record tags are 01..FE", kind="parameter")
    if len(set(tags)) != len(tags):
        raise InvalidInput("file address: a record tag is repeated", kind="parameter")
    return FileAddress(ids[1], tags)


def parse_card_info(card_info: str) -> tuple[str, str]:
    """``card id code|card no|`` -> (card id hex upper, card number); a malformed
    card identification code is ``InvalidCardIdCode`` (-20)."""
    if not isinstance(card_info, str) or not card_info.endswith("|"):
        raise InvalidInput("card information: 'card id code|card no|' expected", kind="parameter")
    fields = card_info[:-1].split("|")
    if len(fields) != 2:
        raise InvalidInput("card information: two fields expected", kind="parameter")
    card_id, number = fields[0].strip(), fields[1].strip()
    CardIdCode.from_hex(card_id)
    if not number or not number.isascii() or not number.isprintable():
        raise InvalidInput("card information: the card number is not printable ASCII", kind="chars")
    return card_id.upper(), number


def check_card_info(session: CardSession, card_info: str | None) -> None:
    """Raise :class:`CardDataMismatch` (-22) unless ``card_info`` names this card."""
    if card_info is None:
        return
    card_id, number = parse_card_info(card_info)
    if card_id != session.card_id or number != session.info.card_number:
        raise CardDataMismatch("the card information does not match the card in the reader")


def parse_write_data(data: str | Sequence[str], count: int) -> tuple[str, ...]:
    """``value|value|`` (or a sequence of values) with exactly ``count`` values."""
    if isinstance(data, str):
        if not data.endswith("|"):
            raise InvalidInput("write data: every value must be followed by '|'", kind="parameter")
        values = tuple(data[:-1].split("|"))
    else:
        values = tuple(data)
        if not all(isinstance(v, str) for v in values):
            raise InvalidInput("write data: text values expected", kind="parameter")
    if len(values) != count:
        raise InvalidInput(f"write data: {count} values expected, got {len(values)}", kind="parameter")
    return values


def _spec(session: CardSession, address: FileAddress) -> FileSpec:
    spec = session.profile.file(address.fid)
    if spec is None or spec.kind != "records":
        raise InvalidInput(
            f"file address: {address.file} is not a record file of this card", kind="parameter"
        )
    undeclared = [t for t in address.tags if spec.record(t) is None]
    if undeclared:
        raise InvalidInput(
            f"file address: {address.file} has no record {', '.join(f'{t:02X}' for t in undeclared)}",
            kind="parameter",
        )
    return spec


def _element(tag: int) -> Element:
    element = ELEMENTS.get(tag)
    if element is None:
        raise InvalidInput(f"record {tag:02X}: unknown data element", kind="parameter")
    return element


def _national_text(value: Any) -> str:
    if isinstance(value, CardIdentification):
        return value.hex()
    if isinstance(value, _dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    return str(value)


def _from_text(element: Element, text: str) -> bytes:
    if element.codec_name in ("binary", "card_id"):
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput(f"{element.name}: hex digits expected", kind="chars") from None
        value: Any = raw if element.codec_name == "binary" else CardIdentification.from_hex(text)
        return element.encode(value)
    return element.encode(text)


def read_generic(
    session: CardSession,
    address: str,
    *,
    card_info: str | None = None,
    key_source: KeySource | None = None,
) -> GenericReadResult:
    """Read the records named by ``address``; an absent record reads as ""."""
    parsed = parse_file_address(address)
    spec = _spec(session, parsed)
    with (
        session.transaction(),
        journal_scope(
            session, "card.read", {"file": parsed.file, "tags": ",".join(f"{t:02X}" for t in parsed.tags)}
        ),
    ):
        check_card_info(session, card_info)
        authenticate_for(session, spec, key_source)
        found = dict(parse_records(session.read_all_raw(spec.sfi or 0)))
        records = tuple(
            (tag, _national_text(_element(tag).decode(found[tag])) if tag in found else "")
            for tag in parsed.tags
        )
        return GenericReadResult(spec.name, records)


def record_check(card_id: str, tag: int, stored: bytes) -> str:
    """A 2-byte check of a record value as stored (journal evidence for tear
    resolution; 16 bits tell nothing useful about the value)."""
    return sm3(bytes.fromhex(card_id) + bytes((tag,)) + stored)[:CHECK_BYTES].hex()


def write_generic(
    session: CardSession,
    address: str,
    data: str | Sequence[str],
    *,
    card_info: str | None = None,
    key_source: KeySource | None = None,
) -> GenericWriteResult:
    """UPDATE RECORD under secure messaging with the AMK, one record per tag."""
    parsed = parse_file_address(address)
    spec = _spec(session, parsed)
    if spec.update.kind != "sm":
        raise InvalidInput(f"file address: {spec.name} cannot be written", kind="parameter")
    values = parse_write_data(data, len(parsed.tags))
    encoded = []
    for tag, text in zip(parsed.tags, values, strict=True):
        record_spec = spec.record(tag)
        assert record_spec is not None
        raw = _from_text(_element(tag), text)
        pad = record_spec.pad_byte
        stored = (
            raw.ljust(record_spec.length, bytes((pad,))) if pad is not None and record_spec.length else raw
        )
        encoded.append((tag, raw, stored))
    details: dict[str, str | int | bool] = {
        "file": spec.name,
        "tags": ",".join(f"{t:02X}" for t in parsed.tags),
    }
    details.update(
        {f"check_{tag:02X}": record_check(session.card_id, tag, stored) for tag, _, stored in encoded}
    )
    with session.transaction(), journal_scope(session, "card.write", details) as scope:
        check_card_info(session, card_info)
        p2 = ((spec.sfi or 0) << 3) | RECORD_ONE
        for tag, raw, _ in encoded:
            command = session.prepare_secure(
                CommandApdu(0x00, 0xDC, tag, p2, encode_record(tag, raw)), KeyRole.AMK, key_source
            )
            with scope.write(f"UPDATE RECORD {tag:02X}"):
                session.send(command, context="key")
        return GenericWriteResult(spec.name, parsed.tags)
