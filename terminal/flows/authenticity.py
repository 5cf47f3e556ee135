"""Card authenticity (docs/card-os.md §7).

1. Symmetric: ``00 88 00 <IAK> Lc r`` with a fresh random ``r`` (one block);
   the key source checks the answer against ``E(IAK_card, r)``.
2. Generation 3 (SM2): ``00 88 80 00 20 <32 random bytes>``; the card signs
   ``"SSCARD-IA" || random``; the terminal reads the signature certificate
   (EF0D) and the encryption certificate (EF0E), verifies both chains to the
   configured trust anchors, checks that the signature certificate names
   this card (subject serialNumber = card identification code) and verifies
   the signature with its public key.

Any failure of the card's side is :class:`~apdu.errors.CardNotGenuine`
(-21), never a warning; a blocked application (6A81 / 9303) is reported as
such (the check could not be made).  Key source and transport errors keep their own
codes (the check could not be made); no trust anchor configured for an SM2
card is :class:`~apdu.errors.InvalidInput` (-14).
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Sequence
from typing import Any

from cryptography.x509.oid import NameOID

from apdu.command import CommandApdu
from apdu.errors import ApplicationBlocked, CardError, CardNotGenuine, InvalidInput, ProtocolError
from card_model.keys import KeyRole
from sm_crypto.errors import CryptoError
from sm_crypto.x509 import Sm2Certificate, verify_chain
from terminal._data import load_data
from terminal.flows._common import file_spec, journal_scope
from terminal.flows.results import AuthenticityResult
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = ["authenticate_card"]

DER_HEADER = 4


def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("cards")["authenticity"]
    return table


def _read_certificate(session: CardSession, name: str) -> Sm2Certificate:
    spec = file_spec(session, name)
    head = session.read_binary_file(spec.fid, DER_HEADER)
    if len(head) < DER_HEADER or head[0] != 0x30 or head[1] != 0x82:
        raise CardNotGenuine(f"{name} holds no DER certificate")
    total = DER_HEADER + int.from_bytes(head[2:4], "big")
    if total > spec.size:
        raise CardNotGenuine(f"{name}: the certificate length exceeds the file")
    der = session.read_binary_file(spec.fid, total)
    try:
        return Sm2Certificate.from_der(der)
    except CryptoError as exc:
        raise CardNotGenuine(f"{name}: certificate unreadable ({exc.error_id})") from exc


def _subject_serial(cert: Sm2Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None


def _sm2_check(
    session: CardSession, anchors: Sequence[Sm2Certificate], at: _dt.datetime | None
) -> tuple[Sm2Certificate, Sm2Certificate]:
    settings = _settings()
    random = secrets.token_bytes(int(settings["sm2_random_length"]))
    signature = session.send(CommandApdu(0x00, 0x88, 0x80, 0x00, random, le=256)).data
    sign_cert = _read_certificate(session, str(settings["signature_certificate"]))
    encrypt_cert = _read_certificate(session, str(settings["encryption_certificate"]))
    pool = list(anchors)
    try:
        path = verify_chain(
            sign_cert, pool, pool, at, required_key_usage=tuple(settings["signature_key_usage"])
        )
        verify_chain(encrypt_cert, pool, pool, at)
    except CryptoError as exc:
        reason = getattr(exc, "reason", exc.error_id)
        raise CardNotGenuine(f"card certificate chain: {reason}") from exc
    serial = _subject_serial(sign_cert)
    if serial is not None and serial.upper() != session.card_id:
        raise CardNotGenuine("the signature certificate belongs to another card")
    try:
        sign_cert.public_key.verify(signature, str(settings["sm2_prefix"]).encode("ascii") + random)
    except CryptoError as exc:
        raise CardNotGenuine("the card's SM2 signature does not verify") from exc
    return sign_cert, path[-1]


def authenticate_card(
    session: CardSession,
    *,
    key_source: KeySource | None = None,
    trust_anchors: Sequence[Sm2Certificate] | None = None,
    at: _dt.datetime | None = None,
) -> AuthenticityResult:
    """Prove the card genuine (symmetric internal authentication, and SM2 on
    generation 3); raises :class:`CardNotGenuine` (-21) on any failure.
    ``trust_anchors`` default to the session's; ``at`` is the time the
    certificates must be valid at (default now)."""
    anchors = tuple(trust_anchors if trust_anchors is not None else session.trust_anchors)
    sm2 = session.profile.sm2
    if sm2 and not anchors:
        raise InvalidInput(
            "no trust anchor (CA certificate) is configured for card certificates", kind="parameter"
        )
    keys = session.keys(key_source)
    with session.transaction(), journal_scope(session, "card.authenticate", {"sm2": sm2}) as scope:
        try:
            kid = session.key_kid(KeyRole.IAK)
            challenge = secrets.token_bytes(session.algorithm.block_size)
            answer = session.send(CommandApdu(0x00, 0x88, 0x00, kid, challenge, le=256)).data
            if not keys.verify_internal_auth(challenge, answer):
                raise CardNotGenuine("internal authentication: the card's answer does not match its key")
            certificate = anchor = None
            if sm2:
                certificate, anchor = _sm2_check(session, anchors, at)
        except ApplicationBlocked:
            raise
        except (CardError, ProtocolError) as exc:
            raise CardNotGenuine(f"internal authentication refused: {exc.error_id}", sw=exc.sw) from exc
        scope.add(genuine=True)
        return AuthenticityResult(
            symmetric=True,
            sm2=True if sm2 else None,
            certificate_subject=None if certificate is None else certificate.subject_text,
            certificate_serial=None if certificate is None else f"{certificate.serial_number:X}",
            anchor_subject=None if anchor is None else anchor.subject_text,
        )
