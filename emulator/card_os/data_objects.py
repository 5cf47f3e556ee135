"""GET DATA ``80 CA DF tag 00`` (docs/card-os.md §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from card_model.keys import KeyRole
from emulator.card_os import personalisation
from emulator.card_os.command import Command
from emulator.card_os.response import SHORT_MAX
from emulator.card_os.sw import (
    SW_DATA_NOT_FOUND,
    SW_SECURITY_STATUS,
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["get_data"]

P1_PROPRIETARY = 0xDF
TAG_LIFE_CYCLE = 0x01
TAG_PIN = 0x02
TAG_KEY_COUNTERS = 0x03
TAG_VERSION = 0x04
TAG_PERSONALISATION = 0x05
PIN_FLAG_INITIAL = 0x01
PIN_FLAG_VERIFIED = 0x02


def _value(card: CardOS, tag: int) -> bytes:
    image = card.image
    if tag == TAG_LIFE_CYCLE:
        return bytes((int(image.life_cycle),))
    if tag == TAG_PIN:
        flags = (PIN_FLAG_INITIAL if image.pin.initial else 0) | (
            PIN_FLAG_VERIFIED if card.session.pin_verified else 0
        )
        return bytes((image.pin.tries_left, image.pin.try_limit, flags))
    if tag == TAG_KEY_COUNTERS:
        eak = card.profile.key_for_role(KeyRole.EAK)
        if eak is None or eak.kid not in card.session.authenticated:
            raise CardStatus(SW_SECURITY_STATUS)
        return b"".join(bytes((k.kid, k.tries_left, k.try_limit)) for _, k in sorted(image.keys.items()))
    if tag == TAG_VERSION:
        major, minor = card.profile.version
        return bytes((card.profile.generation, major, minor))
    if tag == TAG_PERSONALISATION:
        return personalisation.progress(card)
    raise CardStatus(SW_DATA_NOT_FOUND)


def get_data(card: CardOS, cmd: Command) -> bytes:
    if cmd.data:
        raise CardStatus(SW_WRONG_LENGTH)
    if cmd.p1 != P1_PROPRIETARY:
        raise CardStatus(SW_DATA_NOT_FOUND)
    value = _value(card, cmd.p2)
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != len(value):
        raise CardStatus(SW_WRONG_LE | len(value))
    return value
