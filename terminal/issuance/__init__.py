"""Instant issuance and replacement: the CA interface, the issuance order,
the card-side steps and their tear resolution (the flows themselves are
:mod:`terminal.flows.issuance`; docs/issuance.md)."""

from __future__ import annotations

from terminal.issuance.ca import (
    CertificateAuthority,
    CertificateRequest,
    IssuedCertificates,
    LocalTestCa,
    proof_message,
)
from terminal.issuance.errors import (
    CardNotBlank,
    CertificateAuthorityError,
    IssuanceConflict,
    IssuanceError,
    IssuanceIncomplete,
    ReplacementHolderMismatch,
    ReplacementReasonRefused,
)
from terminal.issuance.order import IssuanceOrder

__all__ = [
    "CardNotBlank",
    "CertificateAuthority",
    "CertificateAuthorityError",
    "CertificateRequest",
    "IssuanceConflict",
    "IssuanceError",
    "IssuanceIncomplete",
    "IssuanceOrder",
    "IssuedCertificates",
    "LocalTestCa",
    "ReplacementHolderMismatch",
    "ReplacementReasonRefused",
    "proof_message",
]
