"""Cryptograms computed locally from an issuer master key set.

Shared by the software security module and the development key file.  The
usage rules are those of a PSAM (``card_model/data/key_roles.toml``): a role
may only serve its usages (RK/EAK external authentication, IAK internal
authentication check, AMK/PRK/PUK/... MACs, KTK WRITE KEY bodies), else ``KeySourceError``
``key_level`` (-24).  A role missing from the set is ``no_reading_key``
(-2203) for RK and ``no_algorithm`` (-2202) when the set holds no key of the
card's algorithm at all, else ``key_level``.
"""

from __future__ import annotations

import hmac

from apdu.errors import KeySourceError
from card_model.keyload import write_key_body
from card_model.keys import Algorithm, IssuerKeySet, KeyRole, block_key
from sm_crypto.block import Sm4Key, TdesKey
from terminal.keysource.base import check_challenge, check_factor, check_iv
from terminal.keysource.loading import check_write_target

__all__ = ["MasterKeyEngine"]


class MasterKeyEngine:
    """Card cryptograms from master keys held in this process (never returned)."""

    __slots__ = ("_keys",)

    def __init__(self, key_set: IssuerKeySet) -> None:
        self._keys = key_set

    def __repr__(self) -> str:
        return f"MasterKeyEngine({self._keys!r})"

    def has(self, algorithm: Algorithm, role: KeyRole) -> bool:
        return self._keys.has(algorithm, role)

    def _card_key(self, role: KeyRole, algorithm: Algorithm, factor: bytes, usage: str) -> Sm4Key | TdesKey:
        if usage not in role.psam_usage:
            raise KeySourceError(
                f"key source: the {role.value} key may not be used for {usage}", kind="key_level"
            )
        if not self._keys.has(algorithm, role):
            if role is KeyRole.RK:
                raise KeySourceError(f"key source: no {algorithm.value} reading key", kind="no_reading_key")
            if not any(alg is algorithm for alg, _ in self._keys.masters):
                raise KeySourceError(f"key source: no {algorithm.value} keys", kind="no_algorithm")
            raise KeySourceError(f"key source: no {algorithm.value} {role.value} key", kind="key_level")
        return block_key(algorithm, self._keys.card_key(algorithm, role, check_factor(factor)))

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        challenge = check_challenge(challenge, algorithm)
        key = self._card_key(role, algorithm, factor, "ext")
        return key.encrypt_ecb(challenge.ljust(key.block_size, b"\x00"))

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        iv = check_iv(iv, algorithm)
        key = self._card_key(role, algorithm, factor, "mac")
        if isinstance(key, TdesKey):
            return key.retail_mac(bytes(message), iv)
        return key.mac(bytes(message), iv)

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        """WRITE KEY data field (terminal.keysource.loading) for the card with ``factor``."""
        iv = check_iv(iv, algorithm)
        role = check_write_target(p1, p2, pin_block)
        transport = self._card_key(KeyRole.KTK, algorithm, factor, "wrap")
        if role is None:
            secret = bytes(pin_block)
        else:
            if not self._keys.has(algorithm, role):
                raise KeySourceError(f"key source: no {algorithm.value} {role.value} key", kind="key_level")
            secret = self._keys.card_key(algorithm, role, check_factor(factor))
        return write_key_body(transport, iv, p1, p2, secret)

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        key = self._card_key(KeyRole.IAK, algorithm, factor, "int")
        if len(challenge) != key.block_size or len(response) != key.block_size:
            return False
        return hmac.compare_digest(key.encrypt_ecb(bytes(challenge)), bytes(response))
