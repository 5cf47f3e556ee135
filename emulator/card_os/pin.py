"""VERIFY, CHANGE PIN, RELOAD PIN, PIN UNBLOCK (docs/card-os.md §4).

PIN blocks are packed BCD (``apdu.elements`` codec rules: an odd digit count
ends with ``F``); the profile fixes the number of digits.  A wrong PIN
decrements the try counter and answers ``63Cx``; the failure that reaches 0
answers ``63C0``, later attempts ``6983``.  Counter changes are committed
before the answer.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from card_model.errors import InvalidValue
from card_model.keys import KeyRole
from card_model.values import Ssn
from emulator.card_os.command import Command
from emulator.card_os.security import check_mac
from emulator.card_os.sw import (
    SW_AUTH_BLOCKED,
    SW_DATA_NOT_FOUND,
    SW_VERIFY_FAILED,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["change_pin", "decode_pin_block", "initial_pin_of_card", "reload_pin", "unblock_pin", "verify"]

SEPARATOR = 0xFF
RELOAD_INITIAL = 0x80
SSN_TAG = 0x08


def _block_lengths(card: CardOS) -> range:
    rules = card.profile.pin
    return range((rules.min_digits + 1) // 2, (rules.max_digits + 1) // 2 + 1)


def decode_pin_block(card: CardOS, block: bytes) -> str:
    """PIN digits of a BCD block; 6700 for a wrong size, 6A80 for bad nibbles."""
    if len(block) not in _block_lengths(card):
        raise CardStatus(SW_WRONG_LENGTH)
    text = block.hex().upper()
    if text.endswith("F"):
        text = text[:-1]
    rules = card.profile.pin
    if not text.isdigit() or not rules.min_digits <= len(text) <= rules.max_digits:
        raise CardStatus(SW_WRONG_DATA)
    return text


def _check_pin_id(card: CardOS, pin_id: int) -> None:
    if pin_id != card.profile.pin.pin_id:
        raise CardStatus(SW_WRONG_P1P2)


def _compare(card: CardOS, candidate: str) -> None:
    """Spend a try on a wrong PIN (63Cx), restore the counter on a right one."""
    pin = card.image.pin
    if hmac.compare_digest(candidate.encode(), pin.value.encode()):
        if pin.tries_left != pin.try_limit:
            pin.tries_left = pin.try_limit
            card.touch()
        card.session.pin_verified = True
        return
    pin.tries_left -= 1
    card.touch()
    card.session.pin_verified = False
    raise CardStatus(SW_VERIFY_FAILED | pin.tries_left)


def verify(card: CardOS, cmd: Command) -> bytes:
    """``00 20 00 01 Lc <pin>``; without data: the PIN status, no try spent."""
    if cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    _check_pin_id(card, cmd.p2)
    pin = card.image.pin
    if not cmd.data:
        if pin.blocked:
            raise CardStatus(SW_AUTH_BLOCKED)
        if card.session.pin_verified:
            return b""
        raise CardStatus(SW_VERIFY_FAILED | pin.tries_left)
    candidate = decode_pin_block(card, cmd.data)
    if pin.blocked:
        raise CardStatus(SW_AUTH_BLOCKED)
    _compare(card, candidate)
    return b""


def change_pin(card: CardOS, cmd: Command) -> bytes:
    """``80 5E 01 01 Lc <old> FF <new>``."""
    if cmd.p1 != 0x01:
        raise CardStatus(SW_WRONG_P1P2)
    _check_pin_id(card, cmd.p2)
    data = cmd.data
    split = data.find(SEPARATOR)
    if split < 0:
        raise CardStatus(SW_WRONG_DATA)
    old = decode_pin_block(card, data[:split])
    new = decode_pin_block(card, data[split + 1 :])
    pin = card.image.pin
    if pin.blocked:
        raise CardStatus(SW_AUTH_BLOCKED)
    if hmac.compare_digest(old.encode(), new.encode()):
        raise CardStatus(SW_WRONG_DATA)
    _compare(card, old)
    pin.value = new
    pin.initial = False
    card.touch()
    return b""


def initial_pin_of_card(card: CardOS) -> str | None:
    """The initial PIN from the SSN in EF06 (None when the card holds none)."""
    holder_file = card.profile.file_named("EF06")
    if holder_file is None:
        return None
    raw = card.image.record_files.get(holder_file.fid)
    value = None if raw is None else raw.records.get(SSN_TAG)
    if value is None:
        return None
    try:
        return Ssn(value.decode("ascii").strip()).initial_pin
    except (InvalidValue, UnicodeDecodeError):
        return None


def reload_pin(card: CardOS, cmd: Command) -> bytes:
    """``84 5E 00 P2 Lc <new pin> <MAC PRK>``; P2 01 chosen PIN, 81 the initial PIN."""
    if cmd.p1 or (cmd.p2 & 0x7F) != card.profile.pin.pin_id or cmd.p2 & 0x60:
        raise CardStatus(SW_WRONG_P1P2)
    spec = card.profile.key_for_role(KeyRole.PRK)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    data = check_mac(card, cmd, spec.kid)
    new = decode_pin_block(card, data)
    initial = bool(cmd.p2 & RELOAD_INITIAL)
    if initial:
        expected = initial_pin_of_card(card)
        if expected is None or not hmac.compare_digest(expected.encode(), new.encode()):
            raise CardStatus(SW_WRONG_DATA)
    pin = card.image.pin
    pin.value = new
    pin.initial = initial
    pin.tries_left = pin.try_limit
    card.session.pin_verified = False
    card.touch()
    return b""


def unblock_pin(card: CardOS, cmd: Command) -> bytes:
    """``84 24 00 01 04 <MAC PUK>``: restore the try counter, PIN unchanged."""
    if cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    _check_pin_id(card, cmd.p2)
    spec = card.profile.key_for_role(KeyRole.PUK)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if check_mac(card, cmd, spec.kid):
        raise CardStatus(SW_WRONG_LENGTH)
    pin = card.image.pin
    pin.tries_left = pin.try_limit
    card.touch()
    return b""
