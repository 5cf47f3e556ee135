"""Registry and journal exceptions, subclasses of the project-wide `SscardError`.

Identifiers, national codes (own range -1100..-1199), CLI exit codes and the
English/Chinese text templates live in data/errors.toml, keyed by `error_id`;
`_load_defaults` (the hook `SscardError.__init_subclass__` calls) reads them
from there instead of apdu/data/errors.toml. Texts never carry a full social
security number, a PIN or a key: callers pass masked values only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from apdu.errors import SscardError
from card_model.values import partner_banks
from terminal.registry import catalog

if TYPE_CHECKING:
    from terminal.registry.models import Decision


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fields(values: dict[str, Any]) -> _Fields:
    out = _Fields({k: str(v) for k, v in values.items()})
    if "status" in values:
        out.setdefault("status_zh", catalog.status_label(str(values["status"])).zh)
    if "operation" in values:
        out.setdefault("operation_zh", catalog.operation_label(str(values["operation"])).zh)
    if "state" in values:
        label = catalog.journal_states().get(str(values["state"]))
        out.setdefault("state_zh", label.zh if label else str(values["state"]))
    if "bank" in values:
        bank = next((b for b in partner_banks() if b.code == values["bank"]), None)
        out.setdefault("bank_zh", bank.name_zh if bank else str(values["bank"]))
    return out


class RegistryError(SscardError):
    """Base of every registry/journal error."""

    error_id: ClassVar[str] = "registry_error"
    exit_code: ClassVar[int] = 1

    @classmethod
    def _load_defaults(cls) -> None:
        text = catalog.errors()[cls.error_id]
        cls.message_en = text.en
        cls.message_zh = text.zh
        cls.national_code = text.national_code
        cls.exit_code = text.exit_code

    def __init__(
        self,
        message: str | None = None,
        *,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
        **fields: Any,
    ) -> None:
        """`message` is the English detail for the template's {detail} slot; a
        `detail_zh` field gives its Chinese counterpart; other fields fill the
        template's named slots."""
        if message is not None:
            fields["detail"] = message
        self.fields = dict(fields)
        text = catalog.errors()[self.error_id]
        if message_zh is None:
            zh_values = _fields({**fields, "detail": fields.get("detail_zh", fields.get("detail", "?"))})
            message_zh = text.zh.format_map(zh_values)
        super().__init__(
            text.en.format_map(_fields(fields)), message_zh=message_zh, sw=sw, national_code=national_code
        )

    def _state(self) -> dict[str, Any]:
        return {
            **self.fields,
            "message_zh": self.message_zh,
            "sw": self.sw,
            "national_code": self.national_code,
        }

    def to_json(self) -> dict[str, Any]:
        """The CLI/service error body (codes as strings, per interfaces.md)."""
        body: dict[str, Any] = {
            "error": self.error_id,
            "message": self.message_zh,
            "message_en": self.message,
            "national_code": str(self.national_code),
        }
        if self.sw is not None:
            body["sw"] = f"{self.sw:04X}"
        return body


# -- storage and configuration ------------------------------------------------


class RegistryStorageError(RegistryError):
    error_id = "registry_storage_error"


class RegistryUrlInvalid(RegistryError):
    error_id = "registry_url_invalid"


# -- bad input (nothing is written) ------------------------------------------


class RegistryInputError(RegistryError):
    error_id = "registry_invalid_input"


class InvalidSsn(RegistryInputError):
    error_id = "ssn_invalid"


class InvalidCardId(RegistryInputError):
    error_id = "card_id_invalid"


class UnknownBank(RegistryInputError):
    error_id = "bank_unknown"


class InvalidCardData(RegistryInputError):
    error_id = "card_data_invalid"


class InvalidHolderData(RegistryInputError):
    error_id = "holder_data_invalid"


class InvalidActor(RegistryInputError):
    error_id = "actor_invalid"


class JournalDetailsForbidden(RegistryInputError):
    error_id = "journal_details_forbidden"


class JournalInputInvalid(RegistryInputError):
    error_id = "journal_input_invalid"


# -- refusals (business rules and registry state; CLI exit code 10) ---------


class RegistryRefused(RegistryError):
    error_id = "registry_rule_refused"


class CardNotFound(RegistryRefused):
    error_id = "card_not_found"


class HolderNotFound(RegistryRefused):
    error_id = "holder_not_found"


class CardAlreadyRegistered(RegistryRefused):
    error_id = "card_already_registered"


class HolderAlreadyRegistered(RegistryRefused):
    error_id = "holder_already_registered"


class CardStateRefused(RegistryRefused):
    error_id = "card_state_refused"


class CardNotLost(CardStateRefused):
    error_id = "card_not_lost"


class CardAlreadyLost(CardStateRefused):
    error_id = "card_already_lost"


class CardAlreadyActive(CardStateRefused):
    error_id = "card_already_active"


class CardClosed(CardStateRefused):
    error_id = "card_closed"


class ReplacedCardReleaseRefused(CardStateRefused):
    error_id = "replaced_card_release_refused"


class FinancialBeforeSocialSecurity(CardStateRefused):
    error_id = "financial_cancel_before_social_security"


class AgentNotPermitted(RegistryRefused):
    error_id = "agent_not_permitted"


class BankChangeTooSoon(RegistryRefused):
    error_id = "bank_change_too_soon"


class BankUnchanged(RegistryRefused):
    error_id = "bank_unchanged"


class ReplacementGenerationRefused(RegistryRefused):
    error_id = "replacement_generation_refused"


class ReplacementBankMismatch(RegistryRefused):
    error_id = "replacement_bank_mismatch"


class RegistryConflict(RegistryRefused):
    error_id = "registry_conflict"


class JournalEntryNotFound(RegistryRefused):
    error_id = "journal_entry_not_found"


class JournalEntryClosed(RegistryRefused):
    error_id = "journal_entry_closed"


# -- raised by the terminal's presentation gate (terminal/presentation.py) ----


class CardRefused(RegistryRefused):
    """The registry refuses the presented card (lost, replaced, cancelled ...).

    The national code is the decision's (-1161..-1165); `reason_id` is the
    decision's reason and `blocked` says whether the terminal blocked the
    application on the card.
    """

    error_id = "card_refused"

    def __init__(
        self,
        message: str | None = None,
        *,
        reason_id: str = "",
        blocked: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__(message, reason_id=reason_id, **fields)
        self.reason_id = reason_id
        self.blocked = blocked

    @classmethod
    def from_decision(cls, decision: Decision, *, blocked: bool = False) -> CardRefused:
        return cls(
            card_id=decision.card_id,
            reason_id=decision.reason_id,
            reason=decision.message_en,
            reason_zh=decision.message_zh,
            blocked=blocked,
            national_code=decision.national_code,
        )

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "blocked": self.blocked}

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "reason": self.reason_id, "blocked": self.blocked}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reason": self.reason_id, "blocked": self.blocked}


class RegistryUnavailable(RegistryRefused):
    """The registry is configured but cannot be reached, and the operation needs it."""

    error_id = "registry_unavailable"
