"""ACTIVATE, APPLICATION BLOCK / UNBLOCK, CARD BLOCK and the end of
personalisation (docs/card-os.md §5); every one needs a command MAC with
the maintenance key (AMK) over a fresh challenge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from emulator.card_os import personalisation
from emulator.card_os.command import Command
from emulator.card_os.security import check_mac
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_PERMANENTLY_BLOCKED,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["activate", "app_block", "app_unblock", "card_block", "gate_name"]

BLOCK_TEMPORARY = 0x00
BLOCK_PERMANENT = 0x01
ACTIVATE_P1 = 0x00
PERSONALISE_DONE_P1 = 0x01


def gate_name(name: str, cmd: Command) -> str:
    """The life-cycle gate name of a command (some INS split by P1/P2)."""
    if name == "app_block":
        return "app_block_permanent" if cmd.p2 == BLOCK_PERMANENT else "app_block_temporary"
    if name == "activate" and cmd.p1 == PERSONALISE_DONE_P1:
        return "personalise_done"
    return name


def _maintenance_mac(card: CardOS, cmd: Command) -> None:
    spec = card.profile.key_for_role(KeyRole.AMK)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if check_mac(card, cmd, spec.kid):
        raise CardStatus(SW_WRONG_LENGTH)


def _move(card: CardOS, state: LifeCycle) -> bytes:
    card.image.life_cycle = state
    card.touch()
    return b""


def activate(card: CardOS, cmd: Command) -> bytes:
    """``84 44 00 00 04 MAC``: 01 -> 02.  ``84 44 01 00 04 MAC``: 00 -> 01
    (end of personalisation: only when personalisation.complete holds)."""
    if cmd.p2 or cmd.p1 not in (ACTIVATE_P1, PERSONALISE_DONE_P1):
        raise CardStatus(SW_WRONG_P1P2)
    _maintenance_mac(card, cmd)
    state = card.image.life_cycle
    if cmd.p1 == ACTIVATE_P1:
        if state is not LifeCycle.PERSONALISED:
            raise CardStatus(SW_CONDITIONS)
        return _move(card, LifeCycle.ACTIVE)
    if state is not LifeCycle.BLANK or not personalisation.complete(card):
        raise CardStatus(SW_CONDITIONS)
    return _move(card, LifeCycle.PERSONALISED)


def app_block(card: CardOS, cmd: Command) -> bytes:
    """``84 1E 00 P2 04 MAC``: P2 00 temporary (01/02 -> 03), 01 permanent (any but 05 -> 04)."""
    if cmd.p1 or cmd.p2 not in (BLOCK_TEMPORARY, BLOCK_PERMANENT):
        raise CardStatus(SW_WRONG_P1P2)
    _maintenance_mac(card, cmd)
    state = card.image.life_cycle
    if cmd.p2 == BLOCK_TEMPORARY:
        if state not in (LifeCycle.PERSONALISED, LifeCycle.ACTIVE):
            raise CardStatus(SW_CONDITIONS)
        card.image.blocked_from = state
        return _move(card, LifeCycle.TEMPORARILY_BLOCKED)
    if state is LifeCycle.CARD_BLOCKED:
        raise CardStatus(SW_CONDITIONS)
    if state is LifeCycle.TEMPORARILY_BLOCKED:
        card.image.blocked_from = None
    return _move(card, LifeCycle.PERMANENTLY_BLOCKED)


def app_unblock(card: CardOS, cmd: Command) -> bytes:
    """``84 18 00 00 04 MAC``: 03 -> the state before the block; from 04 9303."""
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    state = card.image.life_cycle
    if state is LifeCycle.PERMANENTLY_BLOCKED:
        raise CardStatus(SW_PERMANENTLY_BLOCKED)
    _maintenance_mac(card, cmd)
    if state is not LifeCycle.TEMPORARILY_BLOCKED:
        raise CardStatus(SW_CONDITIONS)
    previous = card.image.blocked_from or LifeCycle.ACTIVE
    card.image.blocked_from = None
    return _move(card, previous)


def card_block(card: CardOS, cmd: Command) -> bytes:
    """``84 16 00 00 04 MAC``: any -> 05 (terminated)."""
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    _maintenance_mac(card, cmd)
    card.image.blocked_from = None
    return _move(card, LifeCycle.CARD_BLOCKED)
