"""Typed, frozen results of the card flows.

``to_dict()`` gives the JSON of the outward contract
(``/work/shared/spec/interfaces.md``): dates as ``YYYY-MM-DD``, codes as
strings.  ``repr`` never shows a full social security number or a name.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal

from card_model.lifecycle import LifeCycle

__all__ = [
    "AuthenticityResult",
    "BasicInfo",
    "CardStatusResult",
    "GenericReadResult",
    "GenericWriteResult",
    "HolderInfo",
    "KeyCounter",
    "LifeCycleResult",
    "PinOperationResult",
    "PinState",
    "PinStatus",
    "TornEntryOutcome",
    "TornOutcome",
    "TornResolution",
]

PinState = Literal["ok", "initial", "blocked"]
TornOutcome = Literal["applied", "not_applied", "undetermined", "interrupted_read"]
JournalResultName = Literal["ok", "failed", "refused"]


def _iso(day: _dt.date) -> str:
    return day.isoformat()


def _mask_ssn(ssn: str) -> str:
    return ssn[:6] + "*" * max(len(ssn) - 7, 0) + ssn[-1:] if len(ssn) > 7 else "*" * len(ssn)


@dataclass(frozen=True, slots=True)
class BasicInfo:
    """Card identification (EF05) and the detection results."""

    generation: int
    spec_version: str
    card_type: str
    card_id: str
    region_code: str
    init_org: str
    issue_date: _dt.date
    expiry_date: _dt.date
    card_number: str
    atr: str
    historical_bytes: str = ""
    interface: str = "contact"
    application_blocked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "spec_version": self.spec_version,
            "card_type": self.card_type,
            "card_id": self.card_id,
            "region_code": self.region_code,
            "init_org": self.init_org,
            "issue_date": _iso(self.issue_date),
            "expiry_date": _iso(self.expiry_date),
            "card_number": self.card_number,
            "atr": self.atr,
        }


@dataclass(frozen=True, slots=True)
class HolderInfo:
    """Holder basic information (EF06).  ``name`` is the full name (tag 09
    joined with the extension tag 4E); ``name_extension`` the 4E part ("" if none)."""

    ssn: str = field(repr=False)
    name: str = field(repr=False)
    name_extension: str = field(repr=False)
    gender: str
    gender_text: str
    ethnicity: str
    ethnicity_text: str
    birthplace: str
    birth_date: _dt.date

    def to_dict(self) -> dict[str, Any]:
        return {
            "ssn": self.ssn,
            "name": self.name,
            "name_extension": self.name_extension,
            "gender": self.gender,
            "gender_text": self.gender_text,
            "ethnicity": self.ethnicity,
            "ethnicity_text": self.ethnicity_text,
            "birthplace": self.birthplace,
            "birth_date": _iso(self.birth_date),
        }

    @property
    def masked_ssn(self) -> str:
        return _mask_ssn(self.ssn)

    def __repr__(self) -> str:
        return f"HolderInfo(ssn={self.masked_ssn}, gender={self.gender}, birth_date={self.birth_date})"


@dataclass(frozen=True, slots=True)
class PinStatus:
    """Service password state, read without spending a try."""

    state: PinState
    retries_left: int
    max_tries: int
    verified: bool = False
    initial: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "retries_left": self.retries_left, "max_tries": self.max_tries}


@dataclass(frozen=True, slots=True)
class PinOperationResult:
    """Outcome of verify / change / reset / unblock: the PIN status afterwards."""

    operation: str
    status: PinStatus

    @property
    def retries_left(self) -> int:
        return self.status.retries_left

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "ok": True, **self.status.to_dict()}


@dataclass(frozen=True, slots=True)
class LifeCycleResult:
    """Outcome of activate / block / unblock (``after`` None: the card was not
    readable after the command; it answered success)."""

    operation: str
    before: LifeCycle
    after: LifeCycle | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "life_cycle_before": self.before.label,
            "life_cycle": None if self.after is None else self.after.label,
            "life_cycle_text": None if self.after is None else self.after.text,
        }


@dataclass(frozen=True, slots=True)
class KeyCounter:
    kid: int
    role: str
    tries_left: int
    max_tries: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": f"{self.kid:02X}",
            "role": self.role,
            "tries_left": self.tries_left,
            "max_tries": self.max_tries,
        }


@dataclass(frozen=True, slots=True)
class CardStatusResult:
    """Life cycle, PIN state and (with the EAK) the key try counters."""

    generation: int
    profile_version: str
    life_cycle: LifeCycle
    pin: PinStatus
    keys: tuple[KeyCounter, ...] | None

    def key(self, role: str) -> KeyCounter | None:
        return next((k for k in self.keys or () if k.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "profile_version": self.profile_version,
            "life_cycle": self.life_cycle.label,
            "life_cycle_text": self.life_cycle.text,
            "pin": self.pin.to_dict(),
            "keys": None if self.keys is None else [k.to_dict() for k in self.keys],
        }


@dataclass(frozen=True, slots=True)
class AuthenticityResult:
    """The card proved it is genuine (a failure raises CardNotGenuine, -21)."""

    symmetric: bool
    sm2: bool | None
    certificate_subject: str | None = None
    certificate_serial: str | None = None
    anchor_subject: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "genuine": True,
            "symmetric": self.symmetric,
            "sm2": self.sm2,
            "certificate_subject": self.certificate_subject,
            "certificate_serial": self.certificate_serial,
            "anchor_subject": self.anchor_subject,
        }


@dataclass(frozen=True, slots=True)
class GenericReadResult:
    """Records read by national file address; values as national text."""

    file: str
    records: tuple[tuple[int, str], ...] = field(repr=False)

    def national(self) -> str:
        """``value|value|`` in the order of the address (the iReadCard ``pOutInfo``)."""
        return "".join(f"{value}|" for _, value in self.records)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "records": [{"tag": f"{tag:02X}", "value": value} for tag, value in self.records],
            "national": self.national(),
        }

    def __repr__(self) -> str:
        return f"GenericReadResult({self.file}, tags={[f'{t:02X}' for t, _ in self.records]})"


@dataclass(frozen=True, slots=True)
class GenericWriteResult:
    file: str
    tags: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "tags": [f"{t:02X}" for t in self.tags]}


@dataclass(frozen=True, slots=True)
class TornEntryOutcome:
    """What the card showed about one incomplete journal entry."""

    entry_id: int
    operation: str
    outcome: TornOutcome
    result: JournalResultName | None
    note: str
    resolved: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "operation": self.operation,
            "outcome": self.outcome,
            "result": self.result,
            "note": self.note,
            "resolved": self.resolved,
        }


@dataclass(frozen=True, slots=True)
class TornResolution:
    entries: tuple[TornEntryOutcome, ...]

    @property
    def unresolved(self) -> tuple[TornEntryOutcome, ...]:
        return tuple(e for e in self.entries if not e.resolved)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries]}
