"""The key source interface: card cryptograms without handing out keys.

A key source holds (or reaches) the issuer master keys and answers only
cryptograms for one card, identified by its 8-byte diversification factor
(the issuer serial, last 8 bytes of the card identification code):

- ``external_auth``: the EXTERNAL AUTHENTICATE cryptogram ``E(K, iv(ch))``
  for a role (RK, EAK) and the card's challenge;
- ``mac``: the 4-byte command MAC of secure messaging for a role (AMK, PRK,
  PUK, ...) over a message with the challenge-derived IV;
- ``verify_internal_auth``: whether the card's INTERNAL AUTHENTICATE answer
  is ``E(IAK, r)`` (the key source compares; the expected value never leaves).

Implementations: :class:`~terminal.keysource.psam.PsamKeySource`,
:class:`~terminal.keysource.hsm.HsmKeySource` (over a security module such
as :class:`~terminal.keysource.software_hsm.SoftwareHsm`) and
:class:`~terminal.keysource.devfile.DevKeyFileKeySource`.  :class:`CardKeys`
binds a source to one card (algorithm + factor) for the flows.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from apdu.errors import InvalidInput, KeySourceError
from card_model.keys import Algorithm, KeyRole

__all__ = [
    "FACTOR_LENGTH",
    "MAC_LENGTH",
    "CardKeys",
    "KeySource",
    "RoleMac",
    "check_challenge",
    "check_factor",
    "check_iv",
]

FACTOR_LENGTH = 8
MAC_LENGTH = 4
MIN_CHALLENGE = 4


@runtime_checkable
class KeySource(Protocol):
    """Where the master keys live; see the module docstring."""

    @property
    def kind(self) -> str:
        """``psam``, ``hsm`` or ``dev_key_file``."""
        ...

    @property
    def terminal_number(self) -> str:
        """The terminal number (PSAM EF16, 12 digits) or ``""`` when the source has none."""
        ...

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        """Cryptogram ``E(K_card(role), iv(challenge))`` (16 bytes SM4, 8 bytes 3DES)."""
        ...

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        """4-byte MAC of ``message`` with ``K_card(role)`` and initial vector ``iv``
        (SM4 CBC-MAC, or the ISO 9797-1 algorithm 3 retail MAC for 3DES)."""
        ...

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        """True when ``response == E(K_card(IAK), challenge)``."""
        ...

    def close(self) -> None:
        """Release the PSAM reader / module connection (idempotent)."""
        ...


def check_factor(factor: bytes) -> bytes:
    if not isinstance(factor, (bytes, bytearray)) or len(factor) != FACTOR_LENGTH:
        raise InvalidInput("key source: the diversification factor is 8 bytes", kind="length")
    return bytes(factor)


def check_challenge(challenge: bytes, algorithm: Algorithm) -> bytes:
    if not isinstance(challenge, (bytes, bytearray)) or not (
        MIN_CHALLENGE <= len(challenge) <= algorithm.block_size
    ):
        raise InvalidInput(f"key source: a challenge is 4..{algorithm.block_size} bytes", kind="length")
    return bytes(challenge)


def check_iv(iv: bytes, algorithm: Algorithm) -> bytes:
    if not isinstance(iv, (bytes, bytearray)) or len(iv) != algorithm.block_size:
        raise InvalidInput(f"key source: the MAC IV is {algorithm.block_size} bytes", kind="length")
    return bytes(iv)


class RoleMac:
    """:class:`apdu.sm.MacProvider` for one card key role (for ``SecureChannel``)."""

    __slots__ = ("_keys", "_role")

    def __init__(self, keys: CardKeys, role: KeyRole) -> None:
        self._keys = keys
        self._role = role

    def mac(self, message: bytes, iv: bytes) -> bytes:
        return self._keys.mac(self._role, iv, message)

    def __repr__(self) -> str:
        return f"RoleMac({self._role.value})"


class CardKeys:
    """A key source bound to one card: its algorithm and diversification factor."""

    __slots__ = ("algorithm", "factor", "source")

    def __init__(self, source: KeySource, algorithm: Algorithm, factor: bytes) -> None:
        self.source = source
        self.algorithm = algorithm
        self.factor = check_factor(factor)

    def external_auth(self, role: KeyRole, challenge: bytes) -> bytes:
        return self.source.external_auth(role, self.algorithm, self.factor, challenge)

    def mac(self, role: KeyRole, iv: bytes, message: bytes) -> bytes:
        value = self.source.mac(role, self.algorithm, self.factor, iv, message)
        return bytes(value[:MAC_LENGTH])

    def mac_provider(self, role: KeyRole) -> RoleMac:
        return RoleMac(self, role)

    def pin_reload_mac(self, iv: bytes, message: bytes) -> bytes:
        """MAC of RELOAD PIN with the PIN reload key (PRK)."""
        return self.mac(KeyRole.PRK, iv, message)

    def pin_unblock_mac(self, iv: bytes, message: bytes) -> bytes:
        """MAC of PIN UNBLOCK with the PIN unblock key (PUK)."""
        return self.mac(KeyRole.PUK, iv, message)

    def verify_internal_auth(self, challenge: bytes, response: bytes) -> bool:
        return self.source.verify_internal_auth(self.algorithm, self.factor, challenge, response)

    def write_key_body(self, iv: bytes, p1: int, p2: int, pin_block: bytes = b"") -> bytes:
        """WRITE KEY data field for this card (issuance; terminal.keysource.loading)."""
        build = getattr(self.source, "write_key_body", None)
        if not callable(build):
            raise KeySourceError(
                f"the {self.source.kind} key source cannot load keys into a blank card", kind="key_level"
            )
        value: bytes = build(self.algorithm, self.factor, iv, p1, p2, pin_block)
        return bytes(value)

    def __repr__(self) -> str:
        return f"CardKeys({self.source.kind}, {self.algorithm.value})"
