"""SELECT, READ RECORD, READ BINARY, UPDATE RECORD, UPDATE BINARY
(docs/card-os.md §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apdu.tlv import Tlv
from card_model.errors import InvalidValue
from card_model.lifecycle import LifeCycle
from card_model.profile import AccessCondition, FileSpec
from card_model.records import stored_value
from emulator.card_os.command import Command
from emulator.card_os.personalisation import write_access
from emulator.card_os.response import SHORT_MAX
from emulator.card_os.security import check_mac
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_END_OF_FILE,
    SW_FILE_NOT_FOUND,
    SW_INCOMPATIBLE_FILE,
    SW_NO_CURRENT_EF,
    SW_RECORD_NOT_FOUND,
    SW_SECURITY_STATUS,
    SW_SELECTED_BLOCKED,
    SW_WRONG_DATA,
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    SW_WRONG_OFFSET,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["fci", "read_binary", "read_record", "select", "update_binary", "update_record"]

TAG_FCI = 0x6F
TAG_DF_NAME = 0x84
TAG_PROPRIETARY = 0xA5
TAG_GENERATION = 0x9F08
SELECT_P2 = (0x00, 0x0C)


def fci(card: CardOS) -> bytes:
    """``6F L 84 L <DF name> A5 L 9F08 01 <generation>``."""
    profile = card.profile
    proprietary = Tlv(TAG_PROPRIETARY, children=(Tlv(TAG_GENERATION, bytes((profile.generation,))),))
    return Tlv(TAG_FCI, children=(Tlv(TAG_DF_NAME, profile.df_name), proprietary)).encode()


def select(card: CardOS, cmd: Command) -> bytes:
    """By DF name (P1 04), or by FID (P1 00 / 02): MF 3F00 answers the FCI,
    an EF becomes the current EF and answers no data."""
    if cmd.p2 not in SELECT_P2:
        raise CardStatus(SW_WRONG_P1P2)
    profile = card.profile
    if cmd.p1 == 0x04:
        if not cmd.data:
            raise CardStatus(SW_WRONG_LENGTH)
        if cmd.data != profile.df_name:
            raise CardStatus(SW_FILE_NOT_FOUND)
        return _select_mf(card, cmd)
    if cmd.p1 not in (0x00, 0x02):
        raise CardStatus(SW_WRONG_P1P2)
    if len(cmd.data) != 2:
        raise CardStatus(SW_WRONG_LENGTH)
    fid = int.from_bytes(cmd.data, "big")
    if fid == profile.mf_fid and cmd.p1 == 0x00:
        return _select_mf(card, cmd)
    if profile.file(fid) is None:
        raise CardStatus(SW_FILE_NOT_FOUND)
    card.session.current_ef = fid
    return b""


def _select_mf(card: CardOS, cmd: Command) -> bytes:
    card.session.current_ef = None
    data = b"" if cmd.p2 == 0x0C else fci(card)
    if card.image.life_cycle is LifeCycle.TEMPORARILY_BLOCKED:
        raise CardStatus(SW_SELECTED_BLOCKED, data)
    return data


def _satisfied(card: CardOS, access: AccessCondition, cmd: Command) -> None:
    kind = access.kind
    if kind == "always":
        return
    if kind == "auth":
        if access.kid in card.session.authenticated:
            return
        raise CardStatus(SW_SECURITY_STATUS)
    if kind == "never":
        raise CardStatus(SW_SECURITY_STATUS)
    if not cmd.secure_messaging:
        raise CardStatus(SW_SECURITY_STATUS)
    if kind == "issuance_sm" and card.image.life_cycle is not LifeCycle.BLANK:
        raise CardStatus(SW_CONDITIONS)


def _addressed(card: CardOS, sfi: int) -> FileSpec | None:
    """The file an SFI (0: the current EF) names, if any; nothing is changed."""
    if sfi:
        return card.profile.file_by_sfi(sfi)
    current = card.session.current_ef
    return None if current is None else card.profile.file(current)


def _file(card: CardOS, sfi: int, kind: str) -> FileSpec:
    """The file addressed by SFI (0: the current EF), made current."""
    profile = card.profile
    if sfi:
        spec = profile.file_by_sfi(sfi)
        if spec is None:
            raise CardStatus(SW_FILE_NOT_FOUND)
    else:
        current = card.session.current_ef
        if current is None:
            raise CardStatus(SW_NO_CURRENT_EF)
        found = profile.file(current)
        if found is None:
            raise CardStatus(SW_NO_CURRENT_EF)
        spec = found
    if spec.kind != kind:
        raise CardStatus(SW_INCOMPATIBLE_FILE)
    card.session.current_ef = spec.fid
    return spec


def read_record(card: CardOS, cmd: Command) -> bytes:
    """``00 B2 rec P2 Le``; P2 = SFI<<3 | 4 (one record) or | 5 (all from rec)."""
    mode = cmd.p2 & 0x07
    if mode not in (4, 5) or not cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    gate_files = card.gate.read_record_files
    if gate_files is not None:
        # §5: in 03/04 READ RECORD of any file but those listed is refused,
        # whatever the file's kind (a binary file too)
        addressed = _addressed(card, cmd.p2 >> 3)
        if addressed is not None and addressed.name not in gate_files:
            raise CardStatus(card.gate.refuse)
    spec = _file(card, cmd.p2 >> 3, "records")
    if gate_files is not None and spec.name not in gate_files:
        raise CardStatus(card.gate.refuse)
    _satisfied(card, spec.read, cmd)
    records = card.image.record_files[spec.fid].records
    if mode == 4:
        value = records.get(cmd.p1)
        if value is None:
            raise CardStatus(SW_RECORD_NOT_FOUND)
        out = bytes((cmd.p1, len(value))) + value
    else:
        out = b"".join(
            bytes((tag, len(records[tag]))) + records[tag] for tag in sorted(records) if tag >= cmd.p1
        )
        if not out:
            raise CardStatus(SW_RECORD_NOT_FOUND)
    le = cmd.le
    if le is not None and le < SHORT_MAX and le != len(out):
        raise CardStatus(SW_WRONG_LE | (len(out) & 0xFF))
    return out


def _binary_address(cmd: Command) -> tuple[int, int]:
    if cmd.p1 & 0x80:
        if cmd.p1 & 0x60:
            raise CardStatus(SW_WRONG_P1P2)
        return cmd.p1 & 0x1F, cmd.p2
    return 0, ((cmd.p1 & 0x7F) << 8) | cmd.p2


def read_binary(card: CardOS, cmd: Command) -> bytes:
    """``00 B0 P1 P2 Le``: offset form or SFI form (P1 = 80|SFI, P2 = offset)."""
    if cmd.data:
        raise CardStatus(SW_WRONG_LENGTH)
    sfi, offset = _binary_address(cmd)
    spec = _file(card, sfi, "binary")
    _satisfied(card, spec.read, cmd)
    content = card.image.binary_files[spec.fid].content
    if offset >= len(content):
        raise CardStatus(SW_WRONG_OFFSET)
    remaining = len(content) - offset
    le = cmd.le
    if le is None or le >= SHORT_MAX:
        return bytes(content[offset : offset + min(SHORT_MAX, remaining)])
    if le > remaining:
        raise CardStatus(SW_END_OF_FILE, bytes(content[offset:]))
    return bytes(content[offset : offset + le])


def update_record(card: CardOS, cmd: Command) -> bytes:
    """``04 DC rec P2 Lc <tag len value> <MAC>``; P2 = SFI<<3 | 4 or 04.
    In the blank state the personalisation access applies (personalisation.py)."""
    if (cmd.p2 & 0x07) != 4 or not cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    spec = _file(card, cmd.p2 >> 3, "records")
    access = write_access(card, spec, cmd.p1)
    _satisfied(card, access, cmd)
    if access.kid is None:
        raise CardStatus(SW_SECURITY_STATUS)
    data = check_mac(card, cmd, access.kid)
    record = spec.record(cmd.p1)
    if record is None:
        raise CardStatus(SW_RECORD_NOT_FOUND)
    if len(data) < 2 or data[0] != cmd.p1 or data[1] != len(data) - 2:
        raise CardStatus(SW_WRONG_DATA)
    try:
        value = stored_value(record, data[2:])
    except InvalidValue:
        raise CardStatus(SW_WRONG_DATA) from None
    card.image.record_files[spec.fid].records[cmd.p1] = value
    card.touch()
    return b""


def update_binary(card: CardOS, cmd: Command) -> bytes:
    """``04 D6 P1 P2 Lc <data> <MAC>`` (certificates, blank state only)."""
    sfi, offset = _binary_address(cmd)
    spec = _file(card, sfi, "binary")
    access = write_access(card, spec)
    _satisfied(card, access, cmd)
    if access.kid is None:
        raise CardStatus(SW_SECURITY_STATUS)
    data = check_mac(card, cmd, access.kid)
    content = card.image.binary_files[spec.fid].content
    if offset >= len(content):
        raise CardStatus(SW_WRONG_OFFSET)
    if not data or offset + len(data) > len(content):
        raise CardStatus(SW_WRONG_LENGTH)
    content[offset : offset + len(data)] = data
    card.touch()
    return b""
