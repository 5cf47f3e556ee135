"""The certificate authority interface of issuance, and the local test CA.

Issuance sends a certificate request built from the card's own SM2
signature public key (read with READ PUBLIC KEY) and a proof of possession
made by the card; the CA answers the signature certificate, the encryption
certificate and the encryption private key sealed for the card
(:mod:`sm_crypto.envelope`: the key management side of the dual-certificate
scheme generates the encryption key pair; only the card can open it).

Proof of possession: the card signs, with INTERNAL AUTHENTICATE P1 ``80``
(docs/card-os.md §7), ``"SSCARD-IA" || M`` where
``M = SM3(label || card id || card number || public key)`` (label from
``terminal/data/issuance.toml`` [csr]); the CA recomputes ``M`` and verifies
the signature with the request's public key, so a request cannot carry a
key the card does not hold or be moved to another card.

:class:`CertificateAuthority` is the interface a deployment implements
(an online CA, a registration authority client ...);
:class:`LocalTestCa` is the default implementation over an in-process
:class:`sm_crypto.TestCa` (the demo root CA by default).  The terminal
never holds a private key of its own here: the envelope is opaque to it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol, runtime_checkable

from sm_crypto.ca import TestCa
from sm_crypto.envelope import seal_private_key
from sm_crypto.errors import CryptoError
from sm_crypto.sm2 import Sm2PrivateKey, Sm2PublicKey
from sm_crypto.sm3 import sm3
from sm_crypto.x509 import Sm2Certificate
from terminal._data import load_data
from terminal.issuance.errors import CertificateAuthorityError

__all__ = [
    "PROOF_PREFIX",
    "CertificateAuthority",
    "CertificateRequest",
    "IssuedCertificates",
    "LocalTestCa",
    "certificate_subject",
    "proof_message",
]

PROOF_PREFIX = b"SSCARD-IA"
PUBLIC_KEY_LENGTH = 65
SIGNATURE_LENGTH = 64


@cache
def _settings() -> dict[str, Any]:
    return load_data("issuance")


def proof_message(card_id: str, card_number: str, public_key: bytes) -> bytes:
    """The 32 bytes the card signs (after the ``SSCARD-IA`` prefix) as proof of possession."""
    label = str(_settings()["csr"]["label"]).encode("ascii")
    return sm3(label + bytes.fromhex(card_id) + card_number.encode("ascii") + bytes(public_key))


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A CSR-like request for one card: its identity, validity and public key."""

    card_id: str
    card_number: str
    issuer_name: str
    not_before: _dt.date
    not_after: _dt.date
    public_key: bytes
    proof: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.card_id) != 32 or any(c not in "0123456789ABCDEF" for c in self.card_id):
            raise CertificateAuthorityError("certificate request: the card id is 32 upper-case hex digits")
        if len(self.public_key) != PUBLIC_KEY_LENGTH or len(self.proof) != SIGNATURE_LENGTH:
            raise CertificateAuthorityError("certificate request: public key 65 bytes, proof 64 bytes")
        if self.not_after <= self.not_before:
            raise CertificateAuthorityError("certificate request: the validity ends before it starts")

    def to_dict(self) -> dict[str, str]:
        return {
            "card_id": self.card_id,
            "card_number": self.card_number,
            "issuer_name": self.issuer_name,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "public_key": self.public_key.hex().upper(),
            "proof": self.proof.hex().upper(),
        }


@dataclass(frozen=True, slots=True)
class IssuedCertificates:
    """The CA's answer; ``encryption_key_envelope`` is opened only by the card."""

    signature_certificate: Sm2Certificate
    encryption_certificate: Sm2Certificate
    encryption_key_envelope: bytes = field(repr=False)


@runtime_checkable
class CertificateAuthority(Protocol):
    """Issues the card certificates (see the module docstring)."""

    @property
    def anchors(self) -> tuple[Sm2Certificate, ...]:
        """The trust anchors the issued certificates chain to."""
        ...

    def issue(self, request: CertificateRequest) -> IssuedCertificates:
        """Verify the request and issue; :class:`CertificateAuthorityError` when refused."""
        ...


def certificate_subject(request: CertificateRequest, purpose: str) -> Mapping[str, str]:
    """Subject of a card certificate: only the card's own numbers, no personal data."""
    ca = _settings()["ca"]
    return {
        "C": "CN",
        "O": request.issuer_name or "sscard",
        "OU": str(ca["sign_unit"] if purpose == "sign" else ca["encrypt_unit"]),
        "CN": request.card_number,
        "serialNumber": request.card_id,
    }


def _validity(request: CertificateRequest, limit: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime]:
    zone = _dt.timezone(_dt.timedelta(hours=int(_settings()["ca"]["utc_offset_hours"])))
    start = _dt.datetime.combine(request.not_before, _dt.time(), zone)
    end = _dt.datetime.combine(request.not_after, _dt.time(23, 59, 59), zone)
    return start, min(end, limit)


class LocalTestCa:
    """:class:`CertificateAuthority` over an in-process :class:`sm_crypto.TestCa`.

    ``ca`` defaults to the demo root CA (``card_model.demo.demo_ca``), the
    anchor the demo cards chain to.  For tests, demos and a small site's
    own CA; its key is in memory.
    """

    def __init__(self, ca: TestCa | None = None) -> None:
        if ca is None:
            from card_model.demo import demo_ca

            ca = demo_ca()
        self._ca = ca
        self.requests = 0

    def __repr__(self) -> str:
        return f"LocalTestCa({self._ca.certificate.subject_text!r})"

    @property
    def anchors(self) -> tuple[Sm2Certificate, ...]:
        return (self._ca.certificate,)

    def issue(self, request: CertificateRequest) -> IssuedCertificates:
        self.requests += 1
        try:
            public = Sm2PublicKey.from_bytes(request.public_key)
        except CryptoError:
            raise CertificateAuthorityError(
                "certificate request: the public key is not an SM2 point"
            ) from None
        message = proof_message(request.card_id, request.card_number, request.public_key)
        try:
            public.verify(request.proof, PROOF_PREFIX + message)
        except CryptoError:
            raise CertificateAuthorityError(
                "certificate request: the proof of possession does not verify"
            ) from None
        start, end = _validity(request, self._ca.certificate.not_after)
        if end <= start:
            raise CertificateAuthorityError("certificate request: the validity lies outside the CA's")
        encryption_key = Sm2PrivateKey.generate()
        try:
            signature = self._ca.issue_signature_certificate(
                public, certificate_subject(request, "sign"), not_before=start, not_after=end
            )
            encryption = self._ca.issue_encryption_certificate(
                encryption_key.public_key(),
                certificate_subject(request, "encrypt"),
                not_before=start,
                not_after=end,
            )
        except CryptoError as exc:
            raise CertificateAuthorityError(f"the CA could not issue: {exc.error_id}") from None
        return IssuedCertificates(signature, encryption, seal_private_key(public, encryption_key))
