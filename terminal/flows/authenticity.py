"""Card authenticity (docs/card-os.md §7).

1. Symmetric: ``00 88 00 <IAK> Lc r`` with a fresh random ``r`` (one block);
   the key source checks the answer against ``E(IAK_card, r)``.
2. Generation 3 (SM2): the terminal reads the signature certificate
   (EF0D: three READ BINARY, the first by SFI, no SELECT), then sends
   ``00 88 80 00 20 <32 random bytes>``; the card signs
   ``"SSCARD-IA" || random`` while the terminal verifies the certificate's
   chain to the configured trust anchors (in a worker thread); then it
   checks that the certificate names this card (subject serialNumber = card
   identification code) and verifies the signature with its public key.
   The encryption certificate (EF0E) is read and its chain verified too
   only with ``check_encryption_certificate`` in
   ``terminal/data/cards.toml``: it is public data the card proves nothing
   about here (no proof of possession of its key), and issuance already
   matches it to the card's encryption key.

Card APDUs: INTERNAL AUTHENTICATE (SM4), the certificate reads and
INTERNAL AUTHENTICATE (SM2); errors come in the order of the checks: the
card's refusal of a command, the chain, the name, the signature.  The key
source checks the SM4 answer (PSAM: INIT FOR DESCRYPT + CIPHER) in a
worker thread while the card's SM2 half goes on (the PSAM is another
reader: its two APDUs overlap the card's work instead of adding to it).
When both halves fail, the SM4 verdict is the one reported.  No SELECT and
no GET CHALLENGE: the terminal's own randoms are the challenges.

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
from concurrent.futures import ThreadPoolExecutor, wait
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

DER_HEADER = 4  # 30 82 LL LL
LE_ALL = 256  # the most one short READ BINARY answers


def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("cards")["authenticity"]
    return table


def _read_certificate(session: CardSession, name: str) -> Sm2Certificate:
    """The DER certificate of the binary file ``name`` in as few READ BINARY as
    the card's 256-byte answers allow: the first by SFI (``00 B0 80|SFI 00 00``,
    no SELECT; it makes the file current) gives the DER header and the first
    256 bytes, the rest follows by offset with the exact remaining length."""
    spec = file_spec(session, name)
    if spec.sfi:
        first = CommandApdu(0x00, 0xB0, 0x80 | spec.sfi, 0x00, le=LE_ALL)
    else:
        session.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, spec.fid.to_bytes(2, "big")))
        first = CommandApdu(0x00, 0xB0, 0x00, 0x00, le=LE_ALL)
    der = bytearray(session.send(first, accept={0x6282}).data)
    if len(der) < DER_HEADER or der[0] != 0x30 or der[1] != 0x82:
        raise CardNotGenuine(f"{name} holds no DER certificate")
    total = DER_HEADER + int.from_bytes(der[2:4], "big")
    if total > spec.size:
        raise CardNotGenuine(f"{name}: the certificate length exceeds the file")
    del der[total:]
    while len(der) < total:
        offset = len(der)
        cmd = CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=min(LE_ALL, total - offset))
        chunk = session.send(cmd, accept={0x6282}).data
        if not chunk:
            break
        der += chunk
    if len(der) != total:
        raise CardNotGenuine(f"{name}: the certificate is truncated")
    try:
        return Sm2Certificate.from_der(bytes(der))
    except CryptoError as exc:
        raise CardNotGenuine(f"{name}: certificate unreadable ({exc.error_id})") from exc


def _subject_serial(cert: Sm2Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None


def _chain_anchor(
    sign_cert: Sm2Certificate,
    encrypt_cert: Sm2Certificate | None,
    anchors: Sequence[Sm2Certificate],
    at: _dt.datetime | None,
    usage: tuple[str, ...],
) -> Sm2Certificate:
    """The trust anchor the card's certificates chain to (CardNotGenuine if none)."""
    pool = list(anchors)
    try:
        path = verify_chain(sign_cert, pool, pool, at, required_key_usage=usage)
        if encrypt_cert is not None:
            verify_chain(encrypt_cert, pool, pool, at)
    except CryptoError as exc:
        reason = getattr(exc, "reason", exc.error_id)
        raise CardNotGenuine(f"card certificate chain: {reason}") from exc
    return path[-1]


def _sm2_check(
    session: CardSession, anchors: Sequence[Sm2Certificate], at: _dt.datetime | None
) -> tuple[Sm2Certificate, Sm2Certificate]:
    settings = _settings()
    sign_cert = _read_certificate(session, str(settings["signature_certificate"]))
    encrypt_cert = None
    if settings["check_encryption_certificate"]:
        encrypt_cert = _read_certificate(session, str(settings["encryption_certificate"]))
    # The terminal verifies the certificate chain while the card signs.
    usage = tuple(settings["signature_key_usage"])
    chain = _beside_the_card.submit(_chain_anchor, sign_cert, encrypt_cert, anchors, at, usage)
    random = secrets.token_bytes(int(settings["sm2_random_length"]))
    try:
        signature = session.send(CommandApdu(0x00, 0x88, 0x80, 0x00, random, le=256)).data
    except BaseException:
        wait([chain])  # the card's refusal is the error reported
        raise
    anchor = chain.result()  # a chain failure comes before the signature's
    serial = _subject_serial(sign_cert)
    if serial is not None and serial.upper() != session.card_id:
        raise CardNotGenuine("the signature certificate belongs to another card")
    try:
        sign_cert.public_key.verify(signature, str(settings["sm2_prefix"]).encode("ascii") + random)
    except CryptoError as exc:
        raise CardNotGenuine("the card's SM2 signature does not verify") from exc
    return sign_cert, anchor


# Work that runs while the card works (see authenticate_card): the key source's
# SM4 check, and the certificate chain while the card signs.
# A key source is used by one thread at a time per session; shared ones (a PSAM
# behind the service) serialise their own callers.  A check may wait long for an
# outside security module (the national HSM steps wait for the page's answer), so
# there are as many workers as sessions a host runs at once (16 vpcd/USB readers).
_beside_the_card = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sscard-ia-check")


def _symmetric_verdict(matches: bool) -> None:
    if not matches:
        raise CardNotGenuine("internal authentication: the card's answer does not match its key")


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
            certificate = anchor = None
            if sm2:
                # The key source (a PSAM in another reader) checks the SM4 answer
                # while the card signs and its certificate is read and verified.
                check = _beside_the_card.submit(keys.verify_internal_auth, challenge, answer)
                try:
                    certificate, anchor = _sm2_check(session, anchors, at)
                except BaseException:
                    _symmetric_verdict(check.result())  # the SM4 verdict comes first
                    raise
                _symmetric_verdict(check.result())
            else:
                _symmetric_verdict(keys.verify_internal_auth(challenge, answer))
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
