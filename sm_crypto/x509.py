"""X.509 certificates signed with SM2-with-SM3 and chain verification.

Parsing: ``cryptography.x509.load_der_x509_certificate`` checks the DER
structure strictly and parses the extensions (it cannot use SM2 keys or
signatures); asn1crypto reads the names, the SubjectPublicKeyInfo and the
signature. (asn1crypto's extension parsing cost ≈ 0.2 ms per certificate,
cryptography's ≈ 10 µs: a card certificate is parsed in every card
authenticity check.) The signature algorithm
must be SM2-with-SM3 (``1.2.156.10197.1.501``) in both the outer and the
TBSCertificate fields. Certificate signatures are verified with the issuer's
SM2 key and, by default, the user ID ``1234567812345678`` (GM/T 0015).
OpenSSL 3.0 (``openssl req/x509/verify`` without ``distid``) signs and
verifies certificates with an *empty* ID instead; pass ``uid=b""`` to read
such certificates (and to TestCa to produce them).

:func:`verify_chain` builds a path from the leaf through the given
intermediates to one of the trust anchors and checks every signature,
validity period (at ``at``), basicConstraints ``cA`` and path length of each
issuer, keyUsage ``keyCertSign`` of issuers that carry keyUsage, and rejects
unknown critical extensions. It raises :class:`ChainError` with a ``reason``.

:class:`TestCa` (defined in :mod:`sm_crypto.ca`) is also importable from here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from asn1crypto import pem as _pem
from asn1crypto import x509 as _asn1_x509
from cryptography import x509 as _crypto_x509

from sm_crypto._bytes import as_bytes
from sm_crypto._resources import load_toml
from sm_crypto.errors import (
    CertificateError,
    ChainError,
    InvalidKeyError,
    InvalidParameterError,
    InvalidPointError,
    InvalidSignatureError,
)
from sm_crypto.sm2 import DEFAULT_UID, Sm2PublicKey, signature_from_der
from sm_crypto.sm3 import sm3

__all__ = [
    "SM2_WITH_SM3_OID",
    "Sm2Certificate",
    "load_pem_certificates",
    "verify_chain",
]

SM2_WITH_SM3_OID: str = load_toml("sm2.toml")["oid"]["sm2_with_sm3"]
_CHAIN = load_toml("x509.toml")["chain"]
_MAX_DEPTH = int(_CHAIN["max_depth"])
_HANDLED_CRITICAL = frozenset(_CHAIN["handled_critical"])
_KEY_USAGE_NAMES: dict[str, str] = load_toml("x509.toml")["key_usage_names"]
_EXTENSION_ERRORS = (
    ValueError,
    TypeError,
    _crypto_x509.DuplicateExtension,
    _crypto_x509.UnsupportedGeneralNameType,
)


def _key_usage_names(usage: _crypto_x509.KeyUsage) -> frozenset[str]:
    names = set()
    for attribute, name in _KEY_USAGE_NAMES.items():
        try:
            if getattr(usage, attribute):
                names.add(name)
        except ValueError:  # encipher_only / decipher_only without key_agreement
            continue
    return frozenset(names)


class _Extensions:
    """What chain verification needs from the extensions, read once."""

    __slots__ = ("authority_key_id", "ca", "critical", "key_usage", "path_length", "subject_key_id")

    def __init__(self, extensions: _crypto_x509.Extensions) -> None:
        self.critical = frozenset(
            _asn1_x509.ExtensionId.map(ext.oid.dotted_string) for ext in extensions if ext.critical
        )
        self.ca = False
        self.path_length: int | None = None
        self.key_usage: frozenset[str] | None = None
        self.subject_key_id: bytes | None = None
        self.authority_key_id: bytes | None = None
        for ext in extensions:
            value = ext.value
            if isinstance(value, _crypto_x509.BasicConstraints):
                self.ca = value.ca
                self.path_length = value.path_length
            elif isinstance(value, _crypto_x509.KeyUsage):
                self.key_usage = _key_usage_names(value)
            elif isinstance(value, _crypto_x509.SubjectKeyIdentifier):
                self.subject_key_id = value.digest
            elif isinstance(value, _crypto_x509.AuthorityKeyIdentifier):
                self.authority_key_id = value.key_identifier


def __getattr__(name: str) -> Any:
    if name == "TestCa":
        from sm_crypto.ca import TestCa

        return TestCa
    raise AttributeError(name)


class Sm2Certificate:
    """An X.509 v3 certificate with an SM2 key, signed with SM2-with-SM3."""

    __slots__ = ("_asn1", "_crypto", "_der", "_extensions", "_public_key")

    def __init__(self, der: bytes) -> None:
        der = as_bytes(der, "der")
        try:
            asn1_cert = _asn1_x509.Certificate.load(der, strict=True)
            if asn1_cert["tbs_certificate"]["serial_number"].native <= 0:
                # RFC 5280 4.1.2.2 (and TestCa issues none); checked before
                # cryptography, which only warns about it today.
                raise CertificateError("certificate serial number is not positive")
            crypto_cert = _crypto_x509.load_der_x509_certificate(der)
            outer_alg = asn1_cert["signature_algorithm"]
            inner_alg = asn1_cert["tbs_certificate"]["signature"]
            spki_der = asn1_cert["tbs_certificate"]["subject_public_key_info"].dump()
            extensions = _Extensions(crypto_cert.extensions)  # malformed ones fail here
        except (KeyError, _crypto_x509.InvalidVersion, *_EXTENSION_ERRORS) as exc:
            # InvalidVersion: a version field other than v1 or v3 (not a ValueError).
            raise CertificateError("malformed certificate") from exc
        if outer_alg["algorithm"].dotted != SM2_WITH_SM3_OID:
            raise CertificateError(f"unsupported signature algorithm {outer_alg['algorithm'].dotted}")
        if outer_alg.dump() != inner_alg.dump():
            raise CertificateError("signature algorithm differs between certificate and TBS")
        try:
            public_key = Sm2PublicKey.from_der(spki_der)
        except (InvalidKeyError, InvalidPointError) as exc:
            raise CertificateError(f"certificate public key is not a valid SM2 key: {exc}") from exc
        self._der = der
        self._crypto = crypto_cert
        self._asn1 = asn1_cert
        self._extensions = extensions
        self._public_key = public_key

    @classmethod
    def from_der(cls, der: bytes) -> Sm2Certificate:
        return cls(der)

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2Certificate:
        """The first ``CERTIFICATE`` block of ``data``."""
        certs = load_pem_certificates(data)
        return certs[0]

    # -- accessors -------------------------------------------------------------

    @property
    def der(self) -> bytes:
        return self._der

    def to_pem(self) -> bytes:
        return bytes(_pem.armor("CERTIFICATE", self._der))

    @property
    def tbs_der(self) -> bytes:
        return self._crypto.tbs_certificate_bytes

    @property
    def subject(self) -> _crypto_x509.Name:
        return self._crypto.subject

    @property
    def issuer(self) -> _crypto_x509.Name:
        return self._crypto.issuer

    @property
    def subject_der(self) -> bytes:
        """DER of the subject Name exactly as encoded in the certificate."""
        return bytes(self._asn1["tbs_certificate"]["subject"].dump())

    @property
    def subject_text(self) -> str:
        """RFC 4514 string of the subject."""
        return self._crypto.subject.rfc4514_string()

    @property
    def serial_number(self) -> int:
        return self._crypto.serial_number

    @property
    def not_before(self) -> _dt.datetime:
        return self._crypto.not_valid_before_utc

    @property
    def not_after(self) -> _dt.datetime:
        return self._crypto.not_valid_after_utc

    @property
    def public_key(self) -> Sm2PublicKey:
        return self._public_key

    @property
    def is_ca(self) -> bool:
        return self._extensions.ca

    @property
    def path_length(self) -> int | None:
        return self._extensions.path_length

    @property
    def key_usage(self) -> frozenset[str] | None:
        """keyUsage bits as asn1crypto names (``digital_signature``, ``key_cert_sign``...), or None."""
        return self._extensions.key_usage

    @property
    def subject_key_identifier(self) -> bytes | None:
        return self._extensions.subject_key_id

    @property
    def authority_key_identifier(self) -> bytes | None:
        return self._extensions.authority_key_id

    @property
    def critical_extensions(self) -> frozenset[str]:
        return self._extensions.critical

    @property
    def is_self_issued(self) -> bool:
        return _same_name(self._asn1.subject, self._asn1.issuer)

    def fingerprint(self) -> bytes:
        """SM3 digest of the DER certificate."""
        return sm3(self._der)

    def issued_by_name(self, issuer: Sm2Certificate) -> bool:
        """True if ``issuer``'s subject matches this certificate's issuer (RFC 5280 comparison)."""
        return _same_name(self._asn1.issuer, issuer._asn1.subject)

    @property
    def signature(self) -> bytes:
        """The signature as raw ``r || s``; InvalidSignatureError if it is malformed."""
        return signature_from_der(bytes(self._asn1["signature_value"].native))

    def verify_signature(self, issuer_key: Sm2PublicKey, uid: bytes = DEFAULT_UID) -> None:
        """Check the certificate signature with ``issuer_key``; raise InvalidSignatureError."""
        issuer_key.verify(self.signature, self.tbs_der, uid)

    def valid_at(self, at: _dt.datetime) -> bool:
        return self.not_before <= at <= self.not_after

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sm2Certificate):
            return NotImplemented
        return self._der == other._der

    def __hash__(self) -> int:
        return hash(self._der)

    def __repr__(self) -> str:
        return f"Sm2Certificate(subject={self.subject_text!r}, serial={self.serial_number:#x})"


def load_pem_certificates(data: bytes) -> list[Sm2Certificate]:
    """Every ``CERTIFICATE`` block in a PEM bundle (at least one)."""
    data = as_bytes(data, "pem")
    try:
        if not _pem.detect(data):
            raise CertificateError("data is not PEM")
        blocks = [der for label, _h, der in _pem.unarmor(data, multiple=True) if label == "CERTIFICATE"]
    except CertificateError:
        raise
    except (ValueError, TypeError) as exc:
        raise CertificateError("malformed PEM") from exc
    if not blocks:
        raise CertificateError("no CERTIFICATE block found")
    return [Sm2Certificate(der) for der in blocks]


# -- chain verification ------------------------------------------------------------


def _check_time(cert: Sm2Certificate, at: _dt.datetime) -> None:
    if at < cert.not_before:
        raise ChainError(
            f"certificate {cert.subject_text!r} is not yet valid",
            reason="not_yet_valid",
        )
    if at > cert.not_after:
        raise ChainError(f"certificate {cert.subject_text!r} has expired", reason="expired")


def _check_extensions(cert: Sm2Certificate) -> None:
    unknown = cert.critical_extensions - _HANDLED_CRITICAL
    if unknown:
        raise ChainError(
            f"certificate {cert.subject_text!r} has unsupported critical extensions {sorted(unknown)}",
            reason="critical_extension",
        )


def _check_issuer(issuer: Sm2Certificate, intermediates_below: int) -> None:
    if not issuer.is_ca:
        raise ChainError(f"issuer {issuer.subject_text!r} is not a CA", reason="not_ca")
    usage = issuer.key_usage
    if usage is not None and "key_cert_sign" not in usage:
        raise ChainError(
            f"issuer {issuer.subject_text!r} may not sign certificates",
            reason="key_usage",
        )
    limit = issuer.path_length
    if limit is not None and intermediates_below > limit:
        raise ChainError(
            f"path length constraint of {issuer.subject_text!r} exceeded",
            reason="path_length",
        )


def _same_name(a: _asn1_x509.Name, b: _asn1_x509.Name) -> bool:
    """RFC 5280 name comparison, with identical encodings (the usual case: a CA
    copies its subject into what it issues) decided without it, since
    asn1crypto's string preparation costs ≈ 0.35 ms per comparison."""
    return a.dump() == b.dump() or bool(a == b)


def _key_ids_match(child: Sm2Certificate, issuer: Sm2Certificate) -> bool:
    aki = child.authority_key_identifier
    ski = issuer.subject_key_identifier
    return aki is None or ski is None or aki == ski


class _PathSearch:
    def __init__(
        self,
        intermediates: list[Sm2Certificate],
        anchors: list[Sm2Certificate],
        at: _dt.datetime,
        uid: bytes,
    ) -> None:
        self.uid = uid
        self.intermediates = intermediates
        self.anchors = anchors
        self.at = at
        self._failure: tuple[int, ChainError] | None = None

    @property
    def failure(self) -> ChainError:
        if self._failure is None:
            return ChainError("no certificate path found", reason="no_issuer")
        return self._failure[1]

    def note(self, error: ChainError, depth: int) -> None:
        # Keep the failure found deepest in the search: it is the most telling.
        if self._failure is None or depth >= self._failure[0]:
            self._failure = (depth, error)

    def extend(self, path: list[Sm2Certificate]) -> list[Sm2Certificate] | None:
        cert = path[-1]
        if cert in self.anchors:
            return path
        if len(path) >= _MAX_DEPTH:
            self.note(ChainError("certificate path is too long", reason="too_long"), len(path))
            return None
        candidates = [*self.anchors, *(c for c in self.intermediates if c not in path)]
        for issuer in candidates:
            if not (cert.issued_by_name(issuer) and _key_ids_match(cert, issuer)):
                continue
            try:
                cert.verify_signature(issuer.public_key, self.uid)
            except InvalidSignatureError:
                self.note(
                    ChainError(
                        f"signature of {cert.subject_text!r} does not verify with {issuer.subject_text!r}",
                        reason="bad_signature",
                    ),
                    len(path),
                )
                continue
            try:
                _check_time(issuer, self.at)
                _check_extensions(issuer)
                _check_issuer(issuer, intermediates_below=len(path) - 1)
            except ChainError as exc:
                self.note(exc, len(path))
                continue
            found = self.extend([*path, issuer])
            if found is not None:
                return found
        self.note(
            ChainError(f"no trusted issuer found for {cert.subject_text!r}", reason="no_issuer"),
            len(path) - 1,
        )
        return None


def verify_chain(
    leaf: Sm2Certificate,
    intermediates: Iterable[Sm2Certificate],
    anchors: Iterable[Sm2Certificate],
    at: _dt.datetime | None = None,
    *,
    required_key_usage: Sequence[str] = (),
    uid: bytes = DEFAULT_UID,
) -> list[Sm2Certificate]:
    """Verify ``leaf`` up to a trust anchor; return the path ``[leaf, ..., anchor]``.

    ``at`` must be timezone-aware (default: now). ``required_key_usage`` lists
    keyUsage names the leaf must carry (for example ``("digital_signature",)``).
    ``uid`` is the SM2 user ID of the certificate signatures: the GM/T 0015
    default, or ``b""`` for certificates signed by OpenSSL 3 without ``distid``.
    Raises ChainError (with ``reason``) or InvalidParameterError.
    """
    if at is None:
        at = _dt.datetime.now(_dt.UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidParameterError("verification time must be timezone-aware")
    anchor_list = list(anchors)
    if not anchor_list:
        raise InvalidParameterError("at least one trust anchor is required")
    for cert in (leaf, *anchor_list):
        if not isinstance(cert, Sm2Certificate):
            raise TypeError("certificates must be Sm2Certificate objects")
    intermediate_list = list(intermediates)
    _check_time(leaf, at)
    _check_extensions(leaf)
    if required_key_usage:
        usage = leaf.key_usage
        missing = set(required_key_usage) - set(usage or ())
        if usage is None or missing:
            raise ChainError(
                f"leaf certificate lacks key usage {sorted(missing or set(required_key_usage))}",
                reason="key_usage",
            )
    search = _PathSearch(intermediate_list, anchor_list, at, as_bytes(uid, "uid"))
    path = search.extend([leaf])
    if path is None:
        raise search.failure
    return path
