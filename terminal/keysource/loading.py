"""Key loading for issuance: WRITE KEY bodies from the key source.

Personalising a blank card loads every card key and the PIN with
``WRITE KEY 84 D4 P1 P2`` (docs/card-os.md §11).  The key source — PSAM
(``80 FA 11``), security module (a step whose key address is the KTK) or
the development key file — diversifies the target key and the card's
transport key (KTK) itself and answers only the data field
``cryptogram || MAC``; the terminal never sees a key in clear.

A source that can do this implements :class:`KeyLoadingSource`;
:func:`check_write_target` is the common input check (P1 ``00``: P2 the card
KID of a loadable role; P1 ``01``: P2 the PIN id and a packed-BCD PIN
block).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from apdu.errors import InvalidInput, KeySourceError
from card_model.errors import KeyLoadError
from card_model.keyload import KEY_LENGTH, TARGET_KEY, TARGET_PIN, check_target, wrapped_length
from card_model.keys import Algorithm, KeyRole, role_for_kid

__all__ = [
    "KeyLoadingSource",
    "body_length",
    "check_write_target",
    "target_role",
]

MAC_LENGTH = 4


@runtime_checkable
class KeyLoadingSource(Protocol):
    """A key source that builds WRITE KEY bodies for a blank card."""

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        """``cryptogram || MAC`` of ``WRITE KEY 84 D4 P1 P2`` for the card with ``factor``;
        ``iv`` is the card challenge padded to the block size."""
        ...


def target_role(p1: int, p2: int) -> KeyRole | None:
    """The role of the key a WRITE KEY loads (None for the PIN)."""
    if p1 == TARGET_PIN:
        return None
    role = role_for_kid(p2) if p1 == TARGET_KEY else None
    if role is None or role is KeyRole.KTK:
        raise KeySourceError(f"key source: no loadable card key with KID {p2:02X}", kind="key_level")
    return role


def check_write_target(p1: int, p2: int, pin_block: bytes) -> KeyRole | None:
    """Validate a WRITE KEY target; returns the role loaded (None for the PIN)."""
    if p1 not in (TARGET_KEY, TARGET_PIN):
        raise InvalidInput("WRITE KEY: P1 is 00 (key) or 01 (PIN)", kind="parameter")
    if p1 == TARGET_KEY and pin_block:
        raise InvalidInput("WRITE KEY: a key target carries no PIN block", kind="parameter")
    if p1 == TARGET_PIN:
        try:
            check_target(p1, bytes(pin_block))
        except KeyLoadError:
            raise InvalidInput("WRITE KEY: the PIN block is not packed BCD", kind="chars") from None
    return target_role(p1, p2)


def body_length(algorithm: Algorithm, p1: int, pin_block: bytes) -> int:
    """Length of the WRITE KEY data field (cryptogram and MAC)."""
    secret = KEY_LENGTH if p1 == TARGET_KEY else len(pin_block)
    return wrapped_length(algorithm.block_size, secret) + MAC_LENGTH
