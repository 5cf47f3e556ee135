"""Exceptions of issuance and replacement.

Identifiers, national codes, exit codes and texts are data
(``terminal/data/issuance.toml`` ``[errors.<Class>]``).  Messages name what
failed, never holder data, PINs or keys.
"""

from __future__ import annotations

from apdu.errors import SscardError, apply_error_row
from terminal._data import load_data
from terminal.errors import CardDataMismatch

__all__ = [
    "CardNotBlank",
    "CertificateAuthorityError",
    "IssuanceConflict",
    "IssuanceError",
    "IssuanceIncomplete",
    "ReplacementHolderMismatch",
    "ReplacementReasonRefused",
]


class _IssuanceDefaults:
    """Mixin: class defaults (and the CLI exit code) from terminal/data/issuance.toml."""

    exit_code: int = 1

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, load_data("issuance")["errors"].get(cls.__name__))


class IssuanceError(_IssuanceDefaults, SscardError):
    """Base of the issuance failures that are not card, key source or registry errors."""


class CardNotBlank(IssuanceError):
    """The card in the reader is issued already (and not by an unfinished
    issuance of this order), or cannot be personalised (exit 10)."""


class CertificateAuthorityError(IssuanceError):
    """The certificate authority refused the request (bad proof of possession)
    or could not issue (exit 9)."""


class IssuanceIncomplete(IssuanceError):
    """Reading back before END OF PERSONALISATION found the card not holding
    what was written (exit 8)."""


class IssuanceConflict(_IssuanceDefaults, CardDataMismatch):
    """An unfinished card holds key items of another order: it must be
    scrapped, not resumed (-22, exit 10)."""


class ReplacementHolderMismatch(_IssuanceDefaults, CardDataMismatch):
    """The replacement order is for another holder than the old card's (-22, exit 10)."""


class ReplacementReasonRefused(IssuanceError):
    """The old card's registry status does not fit the reason given
    (``lost`` needs a formal loss report, ``damaged`` a card in hand) (exit 10)."""
