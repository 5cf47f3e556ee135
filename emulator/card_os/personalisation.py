"""Personalisation of a blank card (life-cycle state 00; docs/card-os.md §11).

* WRITE KEY ``84 D4 P1 P2 Lc <cryptogram> <MAC>``: P1 ``00`` loads the key
  with KID P2, P1 ``01`` the PIN with id P2; cryptogram and MAC with the
  card's transport key (``card_model.keyload``), which never leaves the
  card and is itself never written.
* Record and binary writes in state 00 use the profile's personalisation
  access (``issuance_sm`` with the write key, AMK) instead of the file's
  run-time update condition; the elements the initialisation organisation
  wrote stay read-only.
* GET DATA DF05: what is loaded so far (keys bitmap, PIN, SM2 key pairs,
  certificates, required records), so a terminal can resume.
* END OF PERSONALISATION (``84 44 01 00``, in lifecycle.py) succeeds only
  when :func:`complete` holds: a card can never look finished but not be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from card_model.errors import KeyLoadError
from card_model.image import KeyState, PinState
from card_model.keyload import KEY_LENGTH, TARGET_KEY, TARGET_PIN, unwrap_secret
from card_model.lifecycle import LifeCycle
from card_model.profile import AccessCondition, FileSpec
from emulator.card_os.command import Command
from emulator.card_os.pin import decode_pin_block, initial_pin_of_card
from emulator.card_os.security import check_mac
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_WRONG_DATA,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["complete", "progress", "write_access", "write_key"]

KEY_BITMAP_BYTES = 4
FLAG_PIN = 0x01
FLAG_SIGN_KEY = 0x02
FLAG_ENCRYPT_KEY = 0x04
FLAG_SIGN_CERTIFICATE = 0x08
FLAG_ENCRYPT_CERTIFICATE = 0x10
FLAG_RECORDS = 0x20
DER_SEQUENCE = 0x30
CERTIFICATE_FLAGS = {
    "sign_certificate": FLAG_SIGN_CERTIFICATE,
    "encryption_certificate": FLAG_ENCRYPT_CERTIFICATE,
}


def _require_blank(card: CardOS) -> None:
    if card.image.life_cycle is not LifeCycle.BLANK:
        raise CardStatus(SW_CONDITIONS)


def write_access(card: CardOS, spec: FileSpec, tag: int | None = None) -> AccessCondition:
    """The access condition of a write to ``spec`` (record ``tag``) in the current state."""
    if card.image.life_cycle is not LifeCycle.BLANK:
        return spec.update
    rules = card.profile.personalisation
    if tag is not None:
        record = spec.record(tag)
        if record is not None and record.element in rules.initialised:
            return AccessCondition("never")
    key = card.profile.key_for_role(rules.write_role)
    if key is None:
        return AccessCondition("never")
    return AccessCondition("issuance_sm", key.kid)


def write_key(card: CardOS, cmd: Command) -> bytes:
    """``84 D4 00 KID`` (a key) / ``84 D4 01 PINID`` (the PIN): blank state only."""
    if cmd.p1 not in (TARGET_KEY, TARGET_PIN):
        raise CardStatus(SW_WRONG_P1P2)
    _require_blank(card)
    transport = card.profile.key_for_role(card.profile.personalisation.transport_role)
    if transport is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    cryptogram = check_mac(card, cmd, transport.kid, use="transport")
    try:
        secret = unwrap_secret(card.key_object(transport.kid), cryptogram)
    except KeyLoadError:
        raise CardStatus(SW_WRONG_DATA) from None
    if cmd.p1 == TARGET_KEY:
        _load_key(card, cmd.p2, secret)
    else:
        _load_pin(card, cmd.p2, secret)
    card.touch()
    return b""


def _load_key(card: CardOS, kid: int, secret: bytes) -> None:
    spec = card.profile.key(kid)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if "transport" in spec.uses:
        raise CardStatus(SW_CONDITIONS)
    if len(secret) != KEY_LENGTH:
        raise CardStatus(SW_WRONG_DATA)
    card.image.keys[kid] = KeyState(
        kid=kid,
        role=spec.role,
        algorithm=card.profile.algorithm,
        version=spec.version,
        value=secret,
        tries_left=spec.try_limit,
        try_limit=spec.try_limit,
    )
    card.forget_key(kid)


def _load_pin(card: CardOS, pin_id: int, block: bytes) -> None:
    """The initial PIN: the profile's rule (last 6 SSN characters) on the SSN already in EF06."""
    if pin_id != card.profile.pin.pin_id:
        raise CardStatus(SW_WRONG_P1P2)
    digits = decode_pin_block(card, block)
    expected = initial_pin_of_card(card)
    if expected is None:
        raise CardStatus(SW_CONDITIONS)
    if digits != expected:
        raise CardStatus(SW_WRONG_DATA)
    limit = card.profile.pin.try_limit
    card.image.pin = PinState(value=digits, tries_left=limit, try_limit=limit, initial=True)
    card.session.pin_verified = False


def _records_complete(card: CardOS) -> bool:
    profile = card.profile
    for name in profile.personalisation.required_files:
        spec = profile.file_named(name)
        if spec is None:
            return False
        present = card.image.record_files[spec.fid].records
        if any(not record.variable and record.tag not in present for record in spec.records):
            return False
    return True


def _certificate_written(card: CardOS, spec: FileSpec) -> bool:
    """Structurally a DER certificate: ``30 82 LL LL`` whose length fits the file."""
    content = card.image.binary_files[spec.fid].content
    if len(content) < 4 or content[0] != DER_SEQUENCE or content[1] != 0x82:
        return False
    return 4 + int.from_bytes(content[2:4], "big") <= len(content)


def _flags(card: CardOS) -> int:
    image = card.image
    flags = FLAG_PIN if image.pin.loaded else 0
    if image.sm2_sign_key is not None:
        flags |= FLAG_SIGN_KEY
    if image.sm2_encrypt_key is not None:
        flags |= FLAG_ENCRYPT_KEY
    for spec in card.profile.files:
        flag = CERTIFICATE_FLAGS.get(spec.content or "")
        if spec.kind == "binary" and flag is not None and _certificate_written(card, spec):
            flags |= flag
    if _records_complete(card):
        flags |= FLAG_RECORDS
    return flags


def progress(card: CardOS) -> bytes:
    """GET DATA DF05: ``keys bitmap (4 bytes, bit n = KID n loaded) || flags``."""
    bitmap = 0
    for kid in card.image.keys:
        bitmap |= 1 << kid
    return bitmap.to_bytes(KEY_BITMAP_BYTES, "big") + bytes((_flags(card),))


def complete(card: CardOS) -> bool:
    """Everything the profile needs is on the card (END OF PERSONALISATION may run)."""
    profile = card.profile
    if any(spec.kid not in card.image.keys for spec in profile.keys):
        return False
    needed = FLAG_PIN | FLAG_RECORDS
    if profile.sm2:
        needed |= FLAG_SIGN_KEY | FLAG_ENCRYPT_KEY
        for spec in profile.files:
            needed |= CERTIFICATE_FLAGS.get(spec.content or "", 0) if spec.kind == "binary" else 0
    return _flags(card) & needed == needed
