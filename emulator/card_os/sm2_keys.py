"""GENERATE KEY PAIR and READ PUBLIC KEY (docs/card-os.md §8)."""

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
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)
from sm_crypto.sm2 import Sm2PrivateKey

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["generate_key_pair", "read_public_key"]

PUBLIC_KEY_LENGTH = 65


def generate_key_pair(card: CardOS, cmd: Command) -> bytes:
    """``84 4A 00 00 04 MAC(AMK)``: blank state only; answers ``04||x||y``."""
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    spec = card.profile.key_for_role(KeyRole.AMK)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if check_mac(card, cmd, spec.kid):
        raise CardStatus(SW_WRONG_LENGTH)
    if card.image.life_cycle is not LifeCycle.BLANK:
        raise CardStatus(SW_CONDITIONS)
    key = Sm2PrivateKey.generate()
    card.image.sm2_sign_key = key.to_bytes()
    card.forget_sign_key()
    card.touch()
    return key.public_key().to_bytes()


def read_public_key(card: CardOS, cmd: Command) -> bytes:
    """``80 4A 01 00 41``: the signature public key, ``6A88`` when none."""
    if cmd.p1 != 0x01 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    if cmd.data:
        raise CardStatus(SW_WRONG_LENGTH)
    key = card.sign_key()
    if key is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != PUBLIC_KEY_LENGTH:
        raise CardStatus(SW_WRONG_LE | PUBLIC_KEY_LENGTH)
    return key.public_key().to_bytes()
