"""Exceptions of the wallet, park ticket and bank card flows.

Identifiers, national codes and texts are data (``terminal/data/wallet.toml``
``[errors.<Class>]``).  Refusals of the caller's request (bad amount, limit,
balance, ticket already bought or not replaceable, bad year or kind) derive from
:class:`apdu.errors.InvalidInput`, so the journal records them as
*refused*; messages carry amounts and years, never keys, MACs or the bank
card number.
"""

from __future__ import annotations

from typing import Any, Literal

from apdu.errors import CardNotGenuine, InvalidInput, SscardError, apply_error_row
from terminal._data import load_data

__all__ = [
    "AmountReason",
    "BalanceLimitExceeded",
    "BankCardNotAvailable",
    "InsufficientBalance",
    "InvalidAmount",
    "InvalidTicketKind",
    "InvalidTicketYear",
    "TicketAlreadyBought",
    "TicketNotAvailable",
    "TicketNotReplaceable",
    "TicketUnreadable",
    "WalletCardNotGenuine",
    "WalletCounterExhausted",
    "WalletError",
    "WalletInactive",
    "WalletNotAvailable",
    "WalletProofInvalid",
    "WalletProofUnchecked",
]

AmountReason = Literal["format", "zero", "negative", "too_large"]


def _row(cls: type) -> dict[str, Any] | None:
    row: dict[str, Any] | None = load_data("wallet")["errors"].get(cls.__name__)
    return row


class _WalletDefaults:
    """Mixin: class defaults from terminal/data/wallet.toml [errors]."""

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, _row(cls))


class WalletError(_WalletDefaults, SscardError):
    """Base of the wallet's own failures (not refusals)."""


class _Refusal(_WalletDefaults, InvalidInput):
    """A request refused by a wallet or ticket rule (journal result "refused")."""

    def __init__(self, message: str = "", *, message_zh: str | None = None) -> None:
        cls = type(self)
        super().__init__(
            f"{cls.message_en}: {message}" if message else cls.message_en,
            message_zh=f"{cls.message_zh}（{message_zh}）" if message_zh else cls.message_zh,
            national_code=cls.national_code,
        )
        self.error_id = cls.error_id  # type: ignore[misc]
        self.kind = None
        self._details = (message, message_zh)

    def __reduce__(self) -> tuple[Any, ...]:
        message, message_zh = self._details
        return (_rebuild_refusal, (type(self), message, message_zh))


def _rebuild_refusal(cls: type[_Refusal], message: str, message_zh: str | None) -> _Refusal:
    return cls(message, message_zh=message_zh)


class InvalidAmount(_Refusal):
    """The amount typed is not a positive number of yuan with at most two decimals."""

    def __init__(self, reason: AmountReason) -> None:
        row = load_data("wallet")["amount_reasons"][reason]
        InvalidInput.__init__(
            self, str(row["en"]), message_zh=str(row["zh"]), national_code=int(row["national_code"])
        )
        self.error_id = type(self).error_id  # type: ignore[misc]
        self.kind = None
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,))


class BalanceLimitExceeded(_Refusal):
    """A load would take the balance past the wallet's limit."""


class InsufficientBalance(_Refusal):
    """A purchase larger than the balance."""


class TicketAlreadyBought(_Refusal):
    """The card already holds a park annual ticket for that year."""


class TicketNotReplaceable(_Refusal):
    """The card's one ticket record holds a ticket still valid on the day of
    sale, or one of a later year: writing another would destroy it."""


class InvalidTicketYear(_Refusal):
    """A ticket year other than the current or a following allowed year."""


class InvalidTicketKind(_Refusal):
    """A ticket kind that ``terminal/data/wallet.toml`` does not list."""


class WalletNotAvailable(WalletError):
    """The card (its profile or the card itself) has no transport wallet."""


class WalletInactive(WalletError):
    """The wallet answered 6985 (``sw``): the card is not activated."""


class WalletCounterExhausted(WalletError):
    """The card's load or purchase counter reached its limit (9402)."""


class WalletCardNotGenuine(_WalletDefaults, CardNotGenuine):
    """The card's MAC1 of INITIALIZE FOR LOAD does not verify."""


class WalletProofInvalid(WalletError):
    """The card's MAC2 or TAC of a completed transaction does not verify."""


class WalletProofUnchecked(WalletError):
    """The card applied a load or purchase, but the key source failed while
    checking its MAC2 / TAC (the journal entry keeps ``applied``)."""


class TicketNotAvailable(WalletError):
    """The card's profile has no park ticket record."""


class TicketUnreadable(WalletError):
    """The park ticket record holds no valid ticket."""


class BankCardNotAvailable(WalletError):
    """No financial application, or it gives no bank card number."""
