"""PBOC-style key diversification and session keys.

Definitions (``E`` is ECB encryption with the given key, ``NOT`` is bitwise
complement, ``d`` an 8-byte diversification factor such as the right-most
8 bytes of the card identification code or card number):

``diversify(master, d)``
    * SM4 master: ``E(MK, d || NOT d)`` -- one 16-byte block, the card key.
    * 3DES master: ``E(MK, d) || E(MK, NOT d)`` -- left and right halves of a
      16-byte (two-key) 3DES card key. (Both are ``master.encrypt_ecb(d || NOT d)``.)

``diversify_multi(master, [d1, d2, ...])``
    Level by level: the output of each level is the master key of the next
    (issuer master -> region sub-master -> card key), keeping the key type.

``session_key(card_key, challenge, counter=b"")``
    * SM4: ``E(K, pad16(challenge || counter))`` where ``pad16`` appends zero
      bytes up to 16; 16-byte SM4 session key.
    * 3DES: ``S = E(K, pad8(challenge || counter))`` (zero right-padding to 8
      bytes) and the session key is ``S || S`` -- a single-length DES key in
      double-length form, as PBOC purchase/load session keys.
    ``challenge`` is the card (or terminal) random number, 4..16 bytes for
    SM4 and 4..8 bytes for 3DES; ``counter`` is an optional transaction
    counter; together they may not exceed one block.

All functions return raw key bytes (wrap them in :class:`Sm4Key` /
:class:`TdesKey`); nothing here logs or formats key material. Bad factor,
challenge or counter lengths raise InvalidParameterError.
"""

from __future__ import annotations

from collections.abc import Sequence

from sm_crypto._bytes import as_bytes
from sm_crypto.block import BlockCipherKey, Sm4Key, TdesKey
from sm_crypto.errors import InvalidParameterError

__all__ = ["FACTOR_LENGTH", "diversify", "diversify_multi", "session_key"]

FACTOR_LENGTH = 8
_MIN_CHALLENGE = 4


def _check_key(key: object) -> BlockCipherKey:
    if not isinstance(key, (Sm4Key, TdesKey)):
        raise TypeError("key must be an Sm4Key or TdesKey")
    return key


def _diversify_key(key: BlockCipherKey, factor: bytes) -> bytes:
    factor = as_bytes(factor, "factor")
    if len(factor) != FACTOR_LENGTH:
        raise InvalidParameterError(
            f"diversification factor must be {FACTOR_LENGTH} bytes, got {len(factor)}"
        )
    inverted = bytes(b ^ 0xFF for b in factor)
    return key.encrypt_ecb(factor + inverted)


def diversify(master: Sm4Key | TdesKey, factor: bytes) -> bytes:
    """Card key derived from ``master`` and an 8-byte factor (16 bytes for both key types)."""
    return _diversify_key(_check_key(master), factor)


def diversify_multi(master: Sm4Key | TdesKey, factors: Sequence[bytes]) -> bytes:
    """Apply :func:`diversify` once per factor; each level's output keys the next level."""
    current = _check_key(master)
    if isinstance(factors, (bytes, bytearray, memoryview)) or not factors:
        raise InvalidParameterError("factors must be a non-empty sequence of 8-byte factors")
    key_type = type(current)
    derived = b""
    for factor in factors:
        derived = _diversify_key(current, factor)
        current = key_type(derived)
    return derived


def session_key(card_key: Sm4Key | TdesKey, challenge: bytes, counter: bytes = b"") -> bytes:
    """Session key from a card key, a challenge and an optional counter (see module doc)."""
    key = _check_key(card_key)
    challenge = as_bytes(challenge, "challenge")
    counter = as_bytes(counter, "counter")
    block = key.block_size
    if not _MIN_CHALLENGE <= len(challenge) <= block:
        raise InvalidParameterError(
            f"challenge must be {_MIN_CHALLENGE}..{block} bytes, got {len(challenge)}"
        )
    seed = challenge + counter
    if len(seed) > block:
        raise InvalidParameterError(f"challenge and counter together exceed {block} bytes")
    derived = key.encrypt_ecb(seed + bytes(block - len(seed)))
    if isinstance(key, TdesKey):
        return derived + derived
    return derived
