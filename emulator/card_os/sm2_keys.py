"""GENERATE KEY PAIR, IMPORT ENCRYPTION KEY PAIR and READ PUBLIC KEY
(docs/card-os.md §8, §11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from emulator.card_os.command import Command
from emulator.card_os.response import SHORT_MAX
from emulator.card_os.security import check_mac
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_WRONG_DATA,
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)
from sm_crypto.envelope import ENVELOPE_LENGTH, open_private_key
from sm_crypto.errors import CryptoError
from sm_crypto.sm2 import Sm2PrivateKey

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["generate_key_pair", "read_public_key"]

PUBLIC_KEY_LENGTH = 65
P1_SIGN = 0x00
P1_READ_SIGN = 0x01
P1_ENCRYPT = 0x02


def _write_key_kid(card: CardOS) -> int:
    spec = card.profile.key_for_role(card.profile.personalisation.write_role)
    if spec is None:
        spec = card.profile.key_for_role(KeyRole.AMK)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    return spec.kid


def generate_key_pair(card: CardOS, cmd: Command) -> bytes:
    """``84 4A 00 00 04 MAC(AMK)``: generate the signature key pair, answers ``04||x||y``;
    ``84 4A 02 00 Lc <envelope> MAC(AMK)``: import the encryption key pair.
    Blank state only."""
    if cmd.p2 or cmd.p1 not in (P1_SIGN, P1_ENCRYPT):
        raise CardStatus(SW_WRONG_P1P2)
    data = check_mac(card, cmd, _write_key_kid(card))
    if cmd.p1 == P1_ENCRYPT:
        return _import_encryption_key(card, data)
    if data:
        raise CardStatus(SW_WRONG_LENGTH)
    if card.image.life_cycle is not LifeCycle.BLANK:
        raise CardStatus(SW_CONDITIONS)
    key = Sm2PrivateKey.generate()
    card.image.sm2_sign_key = key.to_bytes()
    card.forget_sign_key()
    card.touch()
    return key.public_key().to_bytes()


def _import_encryption_key(card: CardOS, envelope: bytes) -> bytes:
    """The encryption key pair from the CA's envelope, sealed for the signature key."""
    if len(envelope) != ENVELOPE_LENGTH:
        raise CardStatus(SW_WRONG_LENGTH)
    if card.image.life_cycle is not LifeCycle.BLANK:
        raise CardStatus(SW_CONDITIONS)
    sign_key = card.sign_key()
    if sign_key is None:
        raise CardStatus(SW_CONDITIONS)
    try:
        key = open_private_key(sign_key, envelope)
    except CryptoError:
        raise CardStatus(SW_WRONG_DATA) from None
    card.image.sm2_encrypt_key = key.to_bytes()
    card.touch()
    return b""


def read_public_key(card: CardOS, cmd: Command) -> bytes:
    """``80 4A 01 00 41``: the signature public key; ``80 4A 02 00 41``: the
    encryption public key; ``6A88`` when none."""
    if cmd.p1 not in (P1_READ_SIGN, P1_ENCRYPT) or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    if cmd.data:
        raise CardStatus(SW_WRONG_LENGTH)
    if cmd.p1 == P1_READ_SIGN:
        key = card.sign_key()
    else:
        raw = card.image.sm2_encrypt_key
        key = None if raw is None else Sm2PrivateKey.from_bytes(raw)
    if key is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != PUBLIC_KEY_LENGTH:
        raise CardStatus(SW_WRONG_LE | PUBLIC_KEY_LENGTH)
    return key.public_key().to_bytes()
