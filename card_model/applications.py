"""Applications beside the social security application (issue 9): the
transport wallet (``[purse]``), the financial application (``[financial]``)
and the park annual ticket record (``[park_ticket]``) of a card profile.

:func:`parse_applications` validates the three optional profile tables
(:class:`card_model.profile.Profile` keeps the result as ``applications``);
:func:`application_files` makes the image files issuance writes for them:
an empty purse (balance 0, counters 0, no records) and the financial
application's record with the virtual card's PAN.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from card_model.errors import ProfileError
from card_model.financial import FinancialSpec, application_record, parse_financial, virtual_pan
from card_model.image import BinaryFile, RecordFile
from card_model.keys import KeyRole
from card_model.purse import PurseSpec, PurseState, parse_purse
from card_model.ticket import TicketSpec, parse_park_ticket

__all__ = ["APPLICATION_TABLES", "PURSE_ROLES", "Applications", "application_files", "parse_applications"]

APPLICATION_TABLES = frozenset({"purse", "financial", "park_ticket"})
PURSE_ROLES = (KeyRole.LK, KeyRole.PK, KeyRole.TK)


class _FileLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fid(self) -> int: ...

    @property
    def sfi(self) -> int | None: ...


class _KeyLike(Protocol):
    @property
    def role(self) -> KeyRole: ...

    @property
    def uses(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Applications:
    """The optional applications a profile declares (None: not on this card)."""

    purse: PurseSpec | None = None
    financial: FinancialSpec | None = None
    park_ticket: TicketSpec | None = None


def parse_applications(
    doc: Mapping[str, Any], *, keys: Sequence[_KeyLike], files: Sequence[_FileLike]
) -> Applications:
    """Validate ``[purse]``, ``[financial]`` and ``[park_ticket]`` of a profile document."""
    used_fids = frozenset(f.fid for f in files)
    used_sfis = frozenset(f.sfi for f in files if f.sfi is not None)
    purse = None
    if "purse" in doc:
        purse = parse_purse(doc["purse"], used_fids=used_fids, used_sfis=used_sfis)
        uses = {k.role: k.uses for k in keys}
        for role in PURSE_ROLES:
            if "mac" not in uses.get(role, frozenset()):
                raise ProfileError(
                    "profile", "inconsistent", f"purse: needs the {role.value} key with mac use"
                )
        used_fids = used_fids | {purse.state_fid, purse.log_fid}
    financial = parse_financial(doc["financial"], used_fids=used_fids) if "financial" in doc else None
    ticket = (
        parse_park_ticket(doc["park_ticket"], {f.name: f for f in files}) if "park_ticket" in doc else None
    )
    return Applications(purse, financial, ticket)


def application_files(
    applications: Applications, *, card_id: bytes, bank_code: str, issue: _dt.date, expiry: _dt.date
) -> tuple[dict[int, RecordFile], dict[int, BinaryFile]]:
    """Image files of the applications at issuance (record files, binary files)."""
    records: dict[int, RecordFile] = {}
    binaries: dict[int, BinaryFile] = {}
    purse = applications.purse
    if purse is not None:
        binaries[purse.state_fid] = BinaryFile(purse.state_fid, bytearray(PurseState().to_bytes()))
        records[purse.log_fid] = RecordFile(purse.log_fid, {})
    financial = applications.financial
    if financial is not None:
        pan = virtual_pan(bank_code, card_id)
        records[financial.record_fid] = RecordFile(
            financial.record_fid, {1: application_record(pan, issue, expiry)}
        )
    return records, binaries
