"""Challenges, key checks, command MACs, EXTERNAL and INTERNAL AUTHENTICATE
(docs/card-os.md §3, §7).

Key try counters: a failed EXTERNAL AUTHENTICATE or MAC decrements the
key's counter (answer ``63Cx`` / ``6988``); the failure that reaches 0
answers ``63C0`` / ``6988`` and every later use ``6983``; a success
restores the limit.  Counter changes are persistent (committed before the
answer).
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from apdu.command import CommandApdu
from apdu.errors import ProtocolError, SecureMessagingError
from apdu.sm import iv_from_challenge, verify_command_mac
from card_model.image import KeyState
from emulator.card_os.command import Command
from emulator.card_os.sw import (
    SW_AUTH_BLOCKED,
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_NO_CHALLENGE,
    SW_SM_WRONG,
    SW_VERIFY_FAILED,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)
from sm_crypto.block import Sm4Key, TdesKey

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = [
    "KeyMac",
    "check_mac",
    "external_authenticate",
    "get_challenge",
    "internal_authenticate",
    "usable_key",
]

CHALLENGE_LENGTHS = (4, 8, 16)
SM2_IA_PREFIX = b"SSCARD-IA"
SM2_IA_RANDOM = 32


class KeyMac:
    """:class:`apdu.sm.MacProvider` over a card key: SM4 CBC-MAC (gen 3) or
    ISO 9797-1 algorithm 3 retail MAC (3DES, gen 2 and 1)."""

    __slots__ = ("_key",)

    def __init__(self, key: Sm4Key | TdesKey) -> None:
        self._key = key

    def mac(self, message: bytes, iv: bytes) -> bytes:
        if isinstance(self._key, TdesKey):
            return self._key.retail_mac(message, iv)
        return self._key.mac(message, iv)


def usable_key(card: CardOS, kid: int, use: str) -> KeyState:
    """The key ``kid`` if the profile allows ``use`` for it and it is not locked."""
    spec = card.profile.key(kid)
    key = card.image.keys.get(kid)
    if spec is None or key is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    if use not in spec.uses:
        raise CardStatus(SW_CONDITIONS)
    if key.locked:
        raise CardStatus(SW_AUTH_BLOCKED)
    return key


def _failed(card: CardOS, key: KeyState) -> None:
    if key.tries_left > 0:
        key.tries_left -= 1
        card.touch()


def _succeeded(card: CardOS, key: KeyState) -> None:
    if key.tries_left != key.try_limit:
        key.tries_left = key.try_limit
        card.touch()


def check_mac(card: CardOS, cmd: Command, kid: int, *, use: str = "mac") -> bytes:
    """Verify the command MAC of an SM command with key ``kid`` over the
    challenge of the previous GET CHALLENGE; return the data without the MAC.
    ``use``: the profile use the key must have (``transport`` for WRITE KEY)."""
    challenge = card.challenge
    if challenge is None:
        raise CardStatus(SW_NO_CHALLENGE)
    if len(cmd.data) < 4:
        raise CardStatus(SW_WRONG_LENGTH)
    key = usable_key(card, kid, use)
    try:
        iv = iv_from_challenge(challenge, card.profile.block_size)
        apdu = CommandApdu.decode(cmd.raw)
    except ProtocolError:
        raise CardStatus(SW_NO_CHALLENGE) from None
    try:
        data = verify_command_mac(apdu, iv, KeyMac(card.key_object(kid)))
    except SecureMessagingError:
        _failed(card, key)
        raise CardStatus(SW_SM_WRONG) from None
    _succeeded(card, key)
    return data


def get_challenge(card: CardOS, cmd: Command) -> bytes:
    """``00 84 00 00 Le``: Le random bytes (4, 8 or 16; at most one block)."""
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    if cmd.data or cmd.le not in CHALLENGE_LENGTHS or cmd.le > card.profile.block_size:
        raise CardStatus(SW_WRONG_LENGTH)
    challenge = secrets.token_bytes(cmd.le)
    card.session.challenge = challenge
    return challenge


def external_authenticate(card: CardOS, cmd: Command) -> bytes:
    """``00 82 00 KID Lc E(K, iv(challenge))``."""
    if cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    key = usable_key(card, cmd.p2, "external_auth")
    if len(cmd.data) != card.profile.block_size:
        raise CardStatus(SW_WRONG_LENGTH)
    challenge = card.challenge
    if challenge is None:
        raise CardStatus(SW_NO_CHALLENGE)
    expected = card.key_object(cmd.p2).encrypt_ecb(iv_from_challenge(challenge, card.profile.block_size))
    if not hmac.compare_digest(expected, cmd.data):
        card.session.authenticated.discard(cmd.p2)
        _failed(card, key)
        raise CardStatus(SW_VERIFY_FAILED | key.tries_left)
    _succeeded(card, key)
    card.session.authenticated.add(cmd.p2)
    return b""


def internal_authenticate(card: CardOS, cmd: Command) -> bytes:
    """``00 88 00 KID Lc r`` -> E(IAK, r); ``00 88 80 00 20 r`` -> SM2 signature."""
    if cmd.p1 == 0x80:
        return _internal_authenticate_sm2(card, cmd)
    if cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    usable_key(card, cmd.p2, "internal_auth")
    if len(cmd.data) != card.profile.block_size:
        raise CardStatus(SW_WRONG_LENGTH)
    return card.key_object(cmd.p2).encrypt_ecb(cmd.data)


def _internal_authenticate_sm2(card: CardOS, cmd: Command) -> bytes:
    if not card.profile.sm2 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    if len(cmd.data) != SM2_IA_RANDOM:
        raise CardStatus(SW_WRONG_LENGTH)
    key = card.sign_key()
    if key is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    return key.sign(SM2_IA_PREFIX + cmd.data)
