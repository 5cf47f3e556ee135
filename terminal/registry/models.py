"""Value objects the registry and the journal hand out and take in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from card_model.values import Bank
from terminal.registry import catalog
from terminal.registry.sanitize import mask_document, mask_ssn
from terminal.registry.timeutil import iso


@dataclass(frozen=True)
class AgentInfo:
    """Someone acting for the holder with a written authorisation."""

    name: str
    id_number: str = field(repr=False)
    authorisation: str

    def describe(self) -> str:
        """What the history and the journal keep: name, masked ID number, authorisation."""
        return f"{self.name} ({mask_document(self.id_number)}; {self.authorisation})"


@dataclass(frozen=True)
class Actor:
    operator: str
    terminal: str
    agent: AgentInfo | None = None


@dataclass(frozen=True)
class NewCard:
    """The card issued by a replacement or a change of bank."""

    card_id: str
    card_number: str
    generation: int
    issue_date: date | str
    expiry_date: date | str
    bank: str | None = None


@dataclass(frozen=True)
class HolderRecord:
    ssn: str = field(repr=False)
    name: str
    gender: str | None
    birth_date: date | None
    registered_at: datetime

    @property
    def ssn_masked(self) -> str:
        return mask_ssn(self.ssn)

    def to_json(self) -> dict[str, Any]:
        return {
            "ssn": self.ssn_masked,
            "name": self.name,
            "gender": self.gender,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "registered_at": iso(self.registered_at),
        }


@dataclass(frozen=True)
class CardRecord:
    card_id: str
    card_number: str
    ssn: str = field(repr=False)
    holder_name: str
    generation: int
    bank: str
    issue_date: date
    expiry_date: date
    status: str
    effective_status: str
    status_since: datetime
    activated_at: datetime | None
    medical_ended_at: datetime | None
    medical_ended_by: str | None
    replaced_by: str | None
    replaces: str | None
    temp_loss_until: datetime | None
    version: int
    registered_at: datetime

    @property
    def ssn_masked(self) -> str:
        return mask_ssn(self.ssn)

    def to_json(self) -> dict[str, Any]:
        bank = Bank.resolve(self.bank)
        return {
            "card_id": self.card_id,
            "card_number": self.card_number,
            "ssn": self.ssn_masked,
            "name": self.holder_name,
            "generation": self.generation,
            "bank": bank.code,
            "bank_name": bank.name_zh,
            "bank_name_en": bank.name_en,
            "issue_date": self.issue_date.isoformat(),
            "expiry_date": self.expiry_date.isoformat(),
            "status": self.status,
            "effective_status": self.effective_status,
            "status_text": catalog.status_label(self.effective_status).zh,
            "status_since": iso(self.status_since),
            "activated_at": iso(self.activated_at),
            "medical_ended_at": iso(self.medical_ended_at),
            "medical_ended_by": self.medical_ended_by,
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "temp_loss_until": iso(self.temp_loss_until),
            "version": self.version,
            "registered_at": iso(self.registered_at),
        }


@dataclass(frozen=True)
class CardEvent:
    """One row of a card's status history."""

    id: int
    card_id: str
    at: datetime
    event: str
    from_status: str | None
    to_status: str
    operator: str
    terminal: str
    agent: str | None
    related_card_id: str | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "card_id": self.card_id,
            "at": iso(self.at),
            "event": self.event,
            "event_text": catalog.operation_label(self.event).zh,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "operator": self.operator,
            "terminal": self.terminal,
            "agent": self.agent,
            "related_card_id": self.related_card_id,
            "note": self.note,
        }


@dataclass(frozen=True)
class Decision:
    """What the registry says about a card presented at a terminal."""

    card_id: str
    known: bool
    allowed: bool
    reason_id: str
    message_zh: str
    message_en: str
    national_code: int
    suspended: frozenset[str]
    block_on_card: bool
    status: str | None
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id,
            "known": self.known,
            "allowed": self.allowed,
            "reason": self.reason_id,
            "message": self.message_zh,
            "message_en": self.message_en,
            "national_code": str(self.national_code),
            "suspended": sorted(self.suspended),
            "block_on_card": self.block_on_card,
            "status": self.status,
            "until": iso(self.until),
        }


@dataclass(frozen=True)
class JournalEntry:
    """One card operation: its intent row and whatever later rows say about it."""

    id: int
    operation: str
    card_id: str | None
    terminal: str
    operator: str
    agent: str | None
    begun_at: datetime
    details: dict[str, str]
    state: str
    result: str | None = None
    national_code: int | None = None
    sw: int | None = None
    completed_at: datetime | None = None
    outcome_details: dict[str, str] = field(default_factory=dict)
    torn_at: datetime | None = None
    torn_note: str | None = None
    resolution: str | None = None
    resolution_note: str | None = None
    resolved_at: datetime | None = None

    @property
    def incomplete(self) -> bool:
        return self.state in ("open", "torn")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "card_id": self.card_id,
            "terminal": self.terminal,
            "operator": self.operator,
            "agent": self.agent,
            "begun_at": iso(self.begun_at),
            "details": dict(self.details),
            "state": self.state,
            "result": self.result,
            "national_code": None if self.national_code is None else str(self.national_code),
            "sw": None if self.sw is None else f"{self.sw:04X}",
            "completed_at": iso(self.completed_at),
            "outcome_details": dict(self.outcome_details),
            "torn_at": iso(self.torn_at),
            "torn_note": self.torn_note,
            "resolution": self.resolution,
            "resolution_note": self.resolution_note,
            "resolved_at": iso(self.resolved_at),
        }
