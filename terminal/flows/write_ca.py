"""Writing the CA's certificates to a card in personalisation (national ``iWriteCA``).

The issuing terminal reads the card's SM2 signature public key
(``iReadSignatureKey``), obtains both certificates and the encryption key
pair from the CA, and writes them with :func:`write_certificates`:

0. split ``pWriteData`` into its three hex fields (:class:`InvalidInput`, -14);
1. probe the card (:class:`terminal.issuance.BlankCard`): it must be in
   personalisation (life cycle 00, else :class:`CardNotInPersonalisation`)
   and hold its signature key pair (else :class:`SignatureKeyMissing`);
   ``card_info`` (national ``pCardInfo``) must name it (-22);
2. check, before any write: both certificates parse, fit their files and
   chain to the trust anchors (:class:`CertificateDataInvalid`, -23); the
   signature certificate's public key is the card's and both name this card
   (serialNumber = card identification code, CN = card number:
   :class:`CertificateCardMismatch`, -22); the sealed key's public half is
   the encryption certificate's (-23);
3. write, each as a journaled issuance step (``card.issue.step``, the
   details the issuance flow uses, so a torn step is settled from the card
   by :mod:`terminal.issuance.tear` in the next session or issuance): EF0D
   and EF0E in chunks under the card's AMK MAC, then IMPORT ENCRYPTION KEY
   PAIR; the whole call is one entry (``card.write_certificates``, with a
   2-byte check of each file's certificate and of the encryption key), torn
   when the card vanishes during or after the writes and settled from the
   card like the steps (applied only when the card holds all three);
4. read back: both certificates and the encryption public key
   (:class:`terminal.issuance.IssuanceIncomplete` otherwise).

``pWriteData`` is ``signature certificate DER hex|encryption certificate DER
hex|sealed encryption key hex|`` (:func:`parse_write_data`).  The card is
finished afterwards by the issuance flow (END OF PERSONALISATION, registry).
"""

from __future__ import annotations

import datetime as _dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from apdu.errors import InvalidInput, SscardError, apply_error_row
from card_model.lifecycle import LifeCycle
from card_model.profile import FileSpec
from sm_crypto.errors import CryptoError
from sm_crypto.x509 import Sm2Certificate, verify_chain
from terminal._data import load_data
from terminal.errors import CardDataMismatch
from terminal.flows.generic import parse_card_info
from terminal.issuance.card import ENCRYPT_KEY, SIGN_KEY, BlankCard, CardProgress
from terminal.issuance.errors import IssuanceIncomplete
from terminal.issuance.tear import FILE_CHECK, KEY_CHECK, issuance_operations, step_verdict, value_check
from terminal.journal_hook import JournalScope
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = [
    "CardNotInPersonalisation",
    "CertificateCardMismatch",
    "CertificateDataInvalid",
    "SignatureKeyMissing",
    "WriteCaData",
    "WriteCaResult",
    "parse_write_data",
    "write_certificates",
]

OPERATION = "card.write_certificates"
SIGN_CONTENT = "sign_certificate"
ENCRYPT_CONTENT = "encryption_certificate"
PUBLIC_KEY_LENGTH = 65


def _table() -> dict[str, Any]:
    return load_data("write_ca")


class _WriteCaDefaults:
    """Mixin: class defaults from ``terminal/data/write_ca.toml`` ``[errors.<Class>]``."""

    exit_code: int = 10

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, _table()["errors"].get(cls.__name__))


class CertificateDataInvalid(_WriteCaDefaults, SscardError):
    """A certificate does not parse, fit or chain, or the sealed key does not match (-23)."""


class CertificateCardMismatch(_WriteCaDefaults, CardDataMismatch):
    """The certificates name another card or another signature key (-22)."""


class CardNotInPersonalisation(_WriteCaDefaults, SscardError):
    """The card is not in personalisation (life cycle 00): -27013 (6985)."""


class SignatureKeyMissing(_WriteCaDefaults, SscardError):
    """The card holds no SM2 signature key pair (yet, or a generation without SM2): -27272 (6A88)."""


@dataclass(frozen=True, slots=True)
class WriteCaData:
    """The parsed ``pWriteData``."""

    signature_certificate: Sm2Certificate
    encryption_certificate: Sm2Certificate
    encryption_key_envelope: bytes

    def __repr__(self) -> str:  # the envelope is a sealed private key: never shown
        return f"WriteCaData(serial={self.signature_certificate.serial_number:X})"


@dataclass(frozen=True, slots=True)
class WriteCaResult:
    card_id: str
    card_number: str
    certificate_serial: str
    steps_run: int
    resolved: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id,
            "card_number": self.card_number,
            "certificate_serial": self.certificate_serial,
            "steps_run": self.steps_run,
            "resolved": self.resolved,
        }


def _hex_field(name: str, text: str) -> bytes:
    value = text.strip()
    if not value or len(value) % 2:
        raise InvalidInput(
            f"iWriteCA pWriteData: the {name} must be an even number of hex digits", kind="parameter"
        )
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInput(f"iWriteCA pWriteData: the {name} is not hex", kind="parameter") from None


def _certificate(name: str, der: bytes) -> Sm2Certificate:
    try:
        return Sm2Certificate.from_der(der)
    except (CryptoError, SscardError, ValueError):
        raise CertificateDataInvalid(f"the {name} is not an SM2 X.509 certificate") from None


def _fields(text: str) -> tuple[bytes, bytes, bytes]:
    """The three hex fields of ``pWriteData`` as bytes (:class:`InvalidInput`, -14)."""
    settings = _table()["write_data"]
    separator = str(settings["separator"])
    count = int(settings["fields"])
    if not isinstance(text, str) or not text.endswith(separator):
        raise InvalidInput("iWriteCA pWriteData: every field must be followed by '|'", kind="parameter")
    parts = text[: -len(separator)].split(separator)
    if len(parts) != count:
        raise InvalidInput(
            f"iWriteCA pWriteData: {count} fields expected, got {len(parts)}", kind="parameter"
        )
    return (
        _hex_field("signature certificate", parts[0]),
        _hex_field("encryption certificate", parts[1]),
        _hex_field("sealed encryption key", parts[2]),
    )


def _decode(raw: tuple[bytes, bytes, bytes]) -> WriteCaData:
    sign_der, encrypt_der, envelope = raw
    return WriteCaData(
        _certificate("signature certificate", sign_der),
        _certificate("encryption certificate", encrypt_der),
        envelope,
    )


def parse_write_data(text: str) -> WriteCaData:
    """``signature cert hex|encryption cert hex|sealed encryption key hex|``.

    A wrong number of fields or a field that is not hex is :class:`InvalidInput`
    (-14); hex that is not a certificate is :class:`CertificateDataInvalid` (-23)."""
    return _decode(_fields(text))


def _names(certificate: Sm2Certificate) -> tuple[str, str]:
    from cryptography.x509.oid import NameOID

    serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (
        str(serial[0].value).upper() if serial else "",
        str(common[0].value) if common else "",
    )


class _Writer:
    def __init__(
        self,
        session: CardSession,
        anchors: Sequence[Sm2Certificate],
        key_source: KeySource | None,
    ) -> None:
        self.session = session
        self.data: WriteCaData | None = None
        self.anchors = list(anchors)
        self.card = BlankCard(session, key_source)
        self.hook = session.journal
        self.step_operation = issuance_operations()["step"]
        self.settled_operations = (self.step_operation, OPERATION)
        self.card_id = ""
        self.parent: int | None = None
        self.steps_run = 0

    # -- checks before writing ---------------------------------------------------------------

    def check_card(self, progress: CardProgress, card_info: str | None) -> bytes:
        """The card's signature public key, after the state checks."""
        if progress.life_cycle is not LifeCycle.BLANK:
            raise CardNotInPersonalisation(f"the card is {progress.life_cycle.label}")
        if card_info is not None:
            card_id, number = parse_card_info(card_info)
            if card_id != progress.card_id_hex or number != (progress.card_number or ""):
                raise CardDataMismatch("the card information does not match the card in the reader")
        if not progress.profile.sm2 or not progress.sign_key:
            raise SignatureKeyMissing(f"the {progress.profile.name} card holds no signature key pair")
        public = self.card.read_public_key(SIGN_KEY)
        if public is None:
            raise SignatureKeyMissing("READ PUBLIC KEY found no signature key")
        return public

    def check_data(self, progress: CardProgress, public: bytes, data: WriteCaData) -> None:
        self.data = data
        for name, certificate in (
            ("signature certificate", data.signature_certificate),
            ("encryption certificate", data.encryption_certificate),
        ):
            at = certificate.not_before + _dt.timedelta(seconds=1)
            try:
                verify_chain(certificate, [], self.anchors, at)
            except CryptoError:
                raise CertificateDataInvalid(f"the {name} does not chain to the trust anchors") from None
            card_id, number = _names(certificate)
            if card_id != progress.card_id_hex or number != (progress.card_number or ""):
                raise CertificateCardMismatch(f"the {name} names another card")
        if not hmac.compare_digest(data.signature_certificate.public_key.to_bytes(), public):
            raise CertificateCardMismatch("the signature certificate is for another key than the card's")
        sealed_public = data.encryption_key_envelope[-PUBLIC_KEY_LENGTH:]
        if len(data.encryption_key_envelope) <= PUBLIC_KEY_LENGTH or not hmac.compare_digest(
            sealed_public, data.encryption_certificate.public_key.to_bytes()
        ):
            raise CertificateDataInvalid("the sealed encryption key is not the encryption certificate's")
        for content, certificate in (
            (SIGN_CONTENT, data.signature_certificate),
            (ENCRYPT_CONTENT, data.encryption_certificate),
        ):
            spec = self.binary_spec(content)
            if len(certificate.der) > spec.size:
                raise CertificateDataInvalid(f"the certificate does not fit {spec.name}")

    def binary_spec(self, content: str) -> FileSpec:
        spec = next((f for f in self.card.profile.files if f.kind == "binary" and f.content == content), None)
        if spec is None:
            raise SignatureKeyMissing(f"the {self.card.profile.name} profile has no {content} file")
        return spec

    # -- journal ------------------------------------------------------------------------------

    def settle_open_steps(self) -> int:
        """Settle the entries an earlier torn write (or issuance) left (steps and
        whole ``iWriteCA`` calls), from the card."""
        progress = self.card.progress
        assert progress is not None
        settled = 0
        for entry in self.hook.incomplete(self.card_id):
            if entry.operation not in self.settled_operations:
                continue
            outcome, note = step_verdict(self.card, progress, entry)
            if outcome in ("applied", "not_applied"):
                result: Literal["ok", "failed"] = "ok" if outcome == "applied" else "failed"
                self.hook.resolve(
                    entry.entry_id, resolution=f"card_state_{outcome}", result=result, note=note
                )
                settled += 1
        return settled

    def step(self, name: str, details: dict[str, str], writes: list[tuple[str, Any]]) -> None:
        full: dict[str, Any] = {"step": name, "parent": self.parent or 0, **details}
        with JournalScope(self.hook, self.step_operation, self.card_id, full) as scope:
            for what, build in writes:
                command = build()
                with scope.write(what):
                    self.card.send(command)
        self.steps_run += 1

    # -- writing ------------------------------------------------------------------------------

    def write_certificate(self, content: str, certificate: Sm2Certificate) -> None:
        spec = self.binary_spec(content)
        der = certificate.der
        writes: list[tuple[str, Any]] = []
        for offset, chunk in self.card.binary_chunks(spec, der):
            writes.append(
                (
                    f"UPDATE BINARY {spec.name} @{offset}",
                    lambda offset=offset, chunk=chunk: self.card.update_binary_command(spec, offset, chunk),
                )
            )
        self.step("write_certificate", {"file": spec.name, "check": value_check(self.card_id, der)}, writes)

    def write(self) -> None:
        data = self.data
        assert data is not None
        self.write_certificate(SIGN_CONTENT, data.signature_certificate)
        self.write_certificate(ENCRYPT_CONTENT, data.encryption_certificate)
        encrypt_public = data.encryption_certificate.public_key.to_bytes()
        self.step(
            "import_encryption_key",
            {"check": value_check(self.card_id, encrypt_public)},
            [("IMPORT ENCRYPTION KEY PAIR", lambda: self.card.import_command(data.encryption_key_envelope))],
        )

    def checks(self) -> dict[str, str]:
        """The call's entry details: a check of each certificate and of the encryption key."""
        data = self.data
        assert data is not None
        out = {
            FILE_CHECK + self.binary_spec(content).name: value_check(self.card_id, certificate.der)
            for content, certificate in (
                (SIGN_CONTENT, data.signature_certificate),
                (ENCRYPT_CONTENT, data.encryption_certificate),
            )
        }
        out[KEY_CHECK] = value_check(self.card_id, data.encryption_certificate.public_key.to_bytes())
        return out

    def read_back(self) -> None:
        data = self.data
        assert data is not None
        for content, certificate in (
            (SIGN_CONTENT, data.signature_certificate),
            (ENCRYPT_CONTENT, data.encryption_certificate),
        ):
            if self.card.read_certificate(self.binary_spec(content)) != certificate.der:
                raise IssuanceIncomplete(f"{self.binary_spec(content).name} does not read back")
        if self.card.read_public_key(ENCRYPT_KEY) != data.encryption_certificate.public_key.to_bytes():
            raise IssuanceIncomplete("the card's encryption key is not the certificate's")


def write_certificates(
    session: CardSession,
    data: WriteCaData | str,
    *,
    anchors: Sequence[Sm2Certificate],
    key_source: KeySource | None = None,
    card_info: str | None = None,
) -> WriteCaResult:
    """Check and write the CA's answer to the card in personalisation (module docstring).

    ``data`` is the parsed :class:`WriteCaData` or the ``pWriteData`` text;
    ``anchors`` the CA certificates the certificates must chain to (an empty
    tuple refuses every certificate); ``key_source`` computes the AMK MACs
    (default: the session's)."""
    raw = _fields(data) if isinstance(data, str) else None
    writer = _Writer(session, anchors, key_source)
    writer.card.connect()
    with session.transport.transaction():
        progress = writer.card.probe()
        writer.card_id = progress.card_id_hex
        public = writer.check_card(progress, card_info)
        if not writer.anchors:
            raise CertificateDataInvalid("no trust anchors are configured to check the certificates")
        parsed = _decode(raw) if raw is not None else data
        assert isinstance(parsed, WriteCaData)
        writer.check_data(progress, public, parsed)
        resolved = writer.settle_open_steps()
        serial = f"{parsed.signature_certificate.serial_number:X}"
        details = {"card_number": progress.card_number or "", "certificate_serial": serial}
        details.update(writer.checks())
        with JournalScope(writer.hook, OPERATION, writer.card_id, details) as scope:
            writer.parent = scope.entry_id
            # a tear during or after the writes leaves the call torn (the card may
            # hold part of it), for the next session to settle from the card
            with scope.write("certificates and encryption key pair"):
                writer.write()
            writer.read_back()
            scope.add(steps=writer.steps_run)
    return WriteCaResult(
        card_id=writer.card_id,
        card_number=progress.card_number or "",
        certificate_serial=serial,
        steps_run=writer.steps_run,
        resolved=resolved,
    )
