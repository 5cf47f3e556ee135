"""A small SM2 certificate authority for the emulator and tests.

:class:`TestCa` makes a self-signed root (or, via :meth:`TestCa.issue_intermediate`,
a subordinate CA) and issues end-entity signature and encryption
certificates for given SM2 public keys, as the card issuance flow needs
(the card's signature certificate and encryption certificate).

The TBSCertificate is built with asn1crypto and signed with SM2-with-SM3
(user ID ``1234567812345678`` unless ``uid`` says otherwise); ``cryptography``'s builder cannot sign with
SM2. Certificates carry basicConstraints and keyUsage (critical),
subjectKeyIdentifier (first 20 bytes of SM3 over the public point) and
authorityKeyIdentifier.

Subject fields are a mapping of RFC 4514 short names (``C``, ``ST``, ``L``,
``O``, ``OU``, ``CN``, ``serialNumber``, ``emailAddress``) to strings;
values may be Chinese (UTF8String).
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Iterable, Mapping

from asn1crypto import keys as _asn1_keys
from asn1crypto import x509 as _asn1_x509

from sm_crypto._bytes import as_bytes
from sm_crypto._resources import load_toml
from sm_crypto.errors import InvalidKeyError, InvalidParameterError
from sm_crypto.sm2 import DEFAULT_UID, Sm2PrivateKey, Sm2PublicKey
from sm_crypto.sm3 import sm3
from sm_crypto.x509 import SM2_WITH_SM3_OID, Sm2Certificate

__all__ = ["ENCRYPTION_KEY_USAGE", "SIGNATURE_KEY_USAGE", "TestCa"]

SIGNATURE_KEY_USAGE = frozenset({"digital_signature", "non_repudiation"})
ENCRYPTION_KEY_USAGE = frozenset({"key_encipherment", "data_encipherment", "key_agreement"})
CA_KEY_USAGE = frozenset({"key_cert_sign", "crl_sign"})
_KEY_USAGE_NAMES = frozenset(
    {
        "digital_signature",
        "non_repudiation",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    }
)
_NAME_ATTRIBUTES: dict[str, str] = load_toml("x509.toml")["name_attributes"]
_UTC_TIME_LIMIT = 2050
_DEFAULT_VALIDITY = _dt.timedelta(days=3650)
_KEY_ID_BYTES = 20


def _name(subject: Mapping[str, str]) -> _asn1_x509.Name:
    if not subject:
        raise InvalidParameterError("subject must have at least one attribute")
    fields = {}
    for short, value in subject.items():
        attribute = _NAME_ATTRIBUTES.get(short)
        if attribute is None:
            raise InvalidParameterError(f"unsupported subject attribute {short!r}")
        if not isinstance(value, str) or not value:
            raise InvalidParameterError(f"subject attribute {short!r} must be a non-empty string")
        fields[attribute] = value
    return _asn1_x509.Name.build(fields, use_printable=False)


def _aware(moment: _dt.datetime | None) -> _dt.datetime | None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise InvalidParameterError("certificate times must be timezone-aware")
    return moment


def _time(moment: _dt.datetime) -> _asn1_x509.Time:
    _aware(moment)
    moment = moment.astimezone(_dt.UTC).replace(microsecond=0)
    kind = "utc_time" if moment.year < _UTC_TIME_LIMIT else "general_time"
    return _asn1_x509.Time(name=kind, value=moment)


def _key_id(public_key: Sm2PublicKey) -> bytes:
    return sm3(public_key.to_bytes())[:_KEY_ID_BYTES]


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


class TestCa:
    """Root or subordinate SM2 CA holding its key and certificate in memory."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        subject: Mapping[str, str] | None = None,
        *,
        key: Sm2PrivateKey | None = None,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        path_length: int | None = None,
        uid: bytes = DEFAULT_UID,
    ) -> None:
        """Create a self-signed root CA (new key unless ``key`` is given).

        ``uid`` is the SM2 user ID used for every signature this CA makes.
        """
        self.key = key if key is not None else Sm2PrivateKey.generate()
        self.uid = as_bytes(uid, "uid")
        subject = (
            subject if subject is not None else {"C": "CN", "O": "sscard test", "CN": "sscard test root CA"}
        )
        name = _name(subject)
        start = _aware(not_before) or _now()
        self.certificate = self._sign_certificate(
            issuer_name=name,
            issuer_key_id=_key_id(self.key.public_key()),
            subject_name=name,
            public_key=self.key.public_key(),
            key_usage=CA_KEY_USAGE,
            is_ca=True,
            path_length=path_length,
            not_before=start,
            not_after=_aware(not_after) or start + _DEFAULT_VALIDITY,
            serial=None,
        )

    @classmethod
    def from_parts(
        cls,
        key: Sm2PrivateKey,
        certificate: Sm2Certificate,
        uid: bytes = DEFAULT_UID,
    ) -> TestCa:
        """A CA from an existing key and its certificate (e.g. a stored demo root).

        Raises :class:`InvalidKeyError` when the certificate does not hold
        the public key of ``key``.
        """
        if not isinstance(key, Sm2PrivateKey) or not isinstance(certificate, Sm2Certificate):
            raise TypeError("key must be an Sm2PrivateKey and certificate an Sm2Certificate")
        if certificate.public_key.to_bytes() != key.public_key().to_bytes():
            raise InvalidKeyError("the CA certificate does not hold the public key of the CA key")
        ca = cls.__new__(cls)
        ca.key = key
        ca.uid = as_bytes(uid, "uid")
        ca.certificate = certificate
        return ca

    @classmethod
    def _from_parts(cls, key: Sm2PrivateKey, certificate: Sm2Certificate, uid: bytes) -> TestCa:
        """Former private name of :meth:`from_parts` (kept for existing callers)."""
        return cls.from_parts(key, certificate, uid)

    def __repr__(self) -> str:
        return f"TestCa({self.certificate.subject_text!r})"

    # -- issuing -------------------------------------------------------------

    def _sign_certificate(
        self,
        *,
        issuer_name: _asn1_x509.Name,
        issuer_key_id: bytes,
        subject_name: _asn1_x509.Name,
        public_key: Sm2PublicKey,
        key_usage: Iterable[str],
        is_ca: bool,
        path_length: int | None,
        not_before: _dt.datetime,
        not_after: _dt.datetime,
        serial: int | None,
    ) -> Sm2Certificate:
        usage = set(key_usage)
        if not usage or not usage <= _KEY_USAGE_NAMES:
            raise InvalidParameterError(f"key usage must be a non-empty subset of {sorted(_KEY_USAGE_NAMES)}")
        if not_after <= not_before:
            raise InvalidParameterError("not_after must be later than not_before")
        if serial is None:
            serial = secrets.randbits(63) + 1
        if isinstance(serial, bool) or not isinstance(serial, int) or serial <= 0:
            raise InvalidParameterError("serial number must be a positive integer")
        if path_length is not None and (not is_ca or path_length < 0):
            raise InvalidParameterError("path length needs a CA certificate and must be >= 0")
        basic: dict[str, object] = {"ca": is_ca}
        if path_length is not None:
            basic["path_len_constraint"] = path_length
        algorithm = {"algorithm": SM2_WITH_SM3_OID}
        tbs = _asn1_x509.TbsCertificate(
            {
                "version": "v3",
                "serial_number": serial,
                "signature": algorithm,
                "issuer": issuer_name,
                "validity": {
                    "not_before": _time(not_before),
                    "not_after": _time(not_after),
                },
                "subject": subject_name,
                "subject_public_key_info": _asn1_keys.PublicKeyInfo.load(public_key.to_der()),
                "extensions": [
                    {
                        "extn_id": "basic_constraints",
                        "critical": True,
                        "extn_value": basic,
                    },
                    {"extn_id": "key_usage", "critical": True, "extn_value": usage},
                    {
                        "extn_id": "key_identifier",
                        "critical": False,
                        "extn_value": _key_id(public_key),
                    },
                    {
                        "extn_id": "authority_key_identifier",
                        "critical": False,
                        "extn_value": {"key_identifier": issuer_key_id},
                    },
                ],
            }
        )
        signature = self.key.sign_der(tbs.dump(), self.uid)
        certificate = _asn1_x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": algorithm,
                "signature_value": signature,
            }
        )
        return Sm2Certificate(certificate.dump())

    def issue_certificate(
        self,
        public_key: Sm2PublicKey,
        subject: Mapping[str, str],
        *,
        key_usage: Iterable[str],
        is_ca: bool = False,
        path_length: int | None = None,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        serial: int | None = None,
    ) -> Sm2Certificate:
        """Issue a certificate for ``public_key`` with the given keyUsage names."""
        if not isinstance(public_key, Sm2PublicKey):
            raise TypeError("public_key must be an Sm2PublicKey")
        start = _aware(not_before) or _now()
        end = _aware(not_after) or min(start + _DEFAULT_VALIDITY, self.certificate.not_after)
        return self._sign_certificate(
            issuer_name=_asn1_x509.Name.load(self.certificate.subject_der),
            issuer_key_id=self.certificate.subject_key_identifier or _key_id(self.key.public_key()),
            subject_name=_name(subject),
            public_key=public_key,
            key_usage=key_usage,
            is_ca=is_ca,
            path_length=path_length,
            not_before=start,
            not_after=end,
            serial=serial,
        )

    def issue_signature_certificate(
        self,
        public_key: Sm2PublicKey,
        subject: Mapping[str, str],
        *,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        serial: int | None = None,
    ) -> Sm2Certificate:
        """End-entity signature certificate (digitalSignature, nonRepudiation)."""
        return self.issue_certificate(
            public_key,
            subject,
            key_usage=SIGNATURE_KEY_USAGE,
            not_before=not_before,
            not_after=not_after,
            serial=serial,
        )

    def issue_encryption_certificate(
        self,
        public_key: Sm2PublicKey,
        subject: Mapping[str, str],
        *,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        serial: int | None = None,
    ) -> Sm2Certificate:
        """End-entity encryption certificate (keyEncipherment, dataEncipherment, keyAgreement)."""
        return self.issue_certificate(
            public_key,
            subject,
            key_usage=ENCRYPTION_KEY_USAGE,
            not_before=not_before,
            not_after=not_after,
            serial=serial,
        )

    def issue_intermediate(
        self,
        subject: Mapping[str, str],
        *,
        key: Sm2PrivateKey | None = None,
        path_length: int | None = None,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
    ) -> TestCa:
        """A subordinate CA signed by this one."""
        sub_key = key if key is not None else Sm2PrivateKey.generate()
        certificate = self.issue_certificate(
            sub_key.public_key(),
            subject,
            key_usage=CA_KEY_USAGE,
            is_ca=True,
            path_length=path_length,
            not_before=not_before,
            not_after=not_after,
        )
        return TestCa.from_parts(sub_key, certificate, self.uid)
