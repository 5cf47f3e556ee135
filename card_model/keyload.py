"""WRITE KEY cryptograms: keys and the PIN loaded into a blank card (docs/card-os.md §11).

During personalisation a card key or the PIN travels only inside the body
of a WRITE KEY command, built by the key source (PSAM / security module)
with the card's transport key KTK (diversified like every card key)::

    WRITE KEY   84 D4 P1 P2 Lc' <cryptogram> <MAC>
    P1 00: P2 = the KID of the key loaded;  P1 01: P2 = the PIN id
    cryptogram  = E(KTK, pad_m2(len || secret))          ECB (SM4 or 3DES)
    MAC         = CBC-MAC(KTK, iv(challenge), 84 D4 P1 P2 Lc' || cryptogram)
                  (the command MAC of docs/card-os.md §3, first 4 bytes)

The secret is a 16-byte key (P1 00) or the packed-BCD PIN block (P1 01).
Binding the MAC to the header means a body made for one KID cannot load
another key slot.  The same functions serve the PSAM emulator, the
software key sources and the card OS (which unwraps), so the formats
cannot drift apart.
"""

from __future__ import annotations

from apdu.command import CommandApdu
from apdu.sm import wrap_command
from card_model.errors import KeyLoadError
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.errors import CryptoError
from sm_crypto.padding import Padding

__all__ = [
    "KEY_LENGTH",
    "TARGET_KEY",
    "TARGET_PIN",
    "WRITE_KEY_CLA",
    "WRITE_KEY_INS",
    "check_target",
    "unwrap_secret",
    "wrap_secret",
    "wrapped_length",
    "write_key_body",
]

WRITE_KEY_CLA = 0x84
WRITE_KEY_INS = 0xD4
TARGET_KEY = 0x00
TARGET_PIN = 0x01
KEY_LENGTH = 16
MAC_LENGTH = 4
MAX_PIN_BLOCK = 6

BlockKey = Sm4Key | TdesKey


class _KeyMac:
    """MAC provider over a block key: SM4 CBC-MAC, or the 3DES retail MAC."""

    __slots__ = ("_key",)

    def __init__(self, key: BlockKey) -> None:
        self._key = key

    def mac(self, message: bytes, iv: bytes) -> bytes:
        if isinstance(self._key, TdesKey):
            return self._key.retail_mac(message, iv)
        return self._key.mac(message, iv)


def wrapped_length(block_size: int, secret_length: int) -> int:
    """Length of the cryptogram of a ``secret_length``-byte secret."""
    return ((1 + secret_length) // block_size + 1) * block_size


def check_target(p1: int, secret: bytes) -> None:
    """A key is 16 bytes; a PIN block 2..6 bytes of BCD (an odd count ends with F)."""
    if p1 == TARGET_KEY:
        if len(secret) != KEY_LENGTH:
            raise KeyLoadError("key_load", "bad_target", "a key is 16 bytes")
        return
    if p1 != TARGET_PIN:
        raise KeyLoadError("key_load", "bad_target", "P1 00 (key) or 01 (PIN)")
    digits = secret.hex().upper()
    if digits.endswith("F"):
        digits = digits[:-1]
    if not 2 <= len(secret) <= MAX_PIN_BLOCK or not digits.isdigit():
        raise KeyLoadError("key_load", "bad_target", "a PIN block is packed BCD")


def wrap_secret(transport_key: BlockKey, secret: bytes) -> bytes:
    """``E(KTK, pad_m2(len || secret))``."""
    if not 1 <= len(secret) <= KEY_LENGTH:
        raise KeyLoadError("key_load", "bad_target", "1..16 bytes")
    return transport_key.encrypt_ecb(bytes((len(secret),)) + bytes(secret), Padding.ISO9797_M2)


def unwrap_secret(transport_key: BlockKey, cryptogram: bytes) -> bytes:
    """The secret inside ``cryptogram`` (:class:`KeyLoadError` when malformed)."""
    try:
        plain = transport_key.decrypt_ecb(bytes(cryptogram), Padding.ISO9797_M2)
    except CryptoError:
        raise KeyLoadError("key_load", "bad_cryptogram") from None
    if not plain or plain[0] != len(plain) - 1 or not 1 <= plain[0] <= KEY_LENGTH:
        raise KeyLoadError("key_load", "bad_cryptogram")
    return plain[1:]


def write_key_body(transport_key: BlockKey, iv: bytes, p1: int, p2: int, secret: bytes) -> bytes:
    """The data field of ``WRITE KEY 84 D4 P1 P2``: cryptogram || MAC over the header."""
    check_target(p1, secret)
    if not 0 <= p2 <= 0xFF:
        raise KeyLoadError("key_load", "bad_target", "P2 is one byte")
    cryptogram = wrap_secret(transport_key, secret)
    plain = CommandApdu(WRITE_KEY_CLA & ~0x04, WRITE_KEY_INS, p1, p2, cryptogram)
    return wrap_command(plain, bytes(iv), _KeyMac(transport_key)).data
