"""Block padding schemes used by card cryptograms.

* ``Padding.NONE``: data must already be a whole number of blocks.
* ``Padding.PKCS7``: RFC 5652 section 6.3; 1..block_size bytes, each equal to the count.
* ``Padding.ISO9797_M2``: ISO/IEC 9797-1 padding method 2 (also ISO 7816-4):
  one ``80`` byte, then ``00`` bytes up to the block boundary; always added,
  so a whole block ``80 00 .. 00`` follows block-aligned data.

Unpadding validates strictly and raises :class:`PaddingError`; a length that
is not a positive multiple of the block size raises
:class:`InvalidBlockLengthError`.
"""

from __future__ import annotations

import enum

from sm_crypto._bytes import as_bytes
from sm_crypto.errors import (
    InvalidBlockLengthError,
    InvalidParameterError,
    PaddingError,
)

__all__ = ["Padding", "pad", "unpad"]

_BLOCK_SIZES = (8, 16)


class Padding(enum.Enum):
    """Padding scheme for ECB/CBC encryption."""

    NONE = "none"
    PKCS7 = "pkcs7"
    ISO9797_M2 = "iso9797_m2"


def _check_block_size(block_size: int) -> None:
    if block_size not in _BLOCK_SIZES:
        raise InvalidParameterError("block size must be 8 or 16")


def pad(data: bytes, block_size: int, padding: Padding) -> bytes:
    """Pad ``data`` to a multiple of ``block_size`` (8 or 16)."""
    data = as_bytes(data, "data")
    _check_block_size(block_size)
    if padding is Padding.NONE:
        if len(data) % block_size:
            raise InvalidBlockLengthError(
                f"data length {len(data)} is not a multiple of the block size {block_size}"
            )
        return data
    if padding is Padding.PKCS7:
        n = block_size - len(data) % block_size
        return data + bytes([n]) * n
    if padding is Padding.ISO9797_M2:
        n = block_size - len(data) % block_size
        return data + b"\x80" + bytes(n - 1)
    raise TypeError("padding must be a Padding member")


def unpad(data: bytes, block_size: int, padding: Padding) -> bytes:
    """Remove and validate padding from decrypted ``data``."""
    data = as_bytes(data, "data")
    _check_block_size(block_size)
    if not isinstance(padding, Padding):
        raise TypeError("padding must be a Padding member")
    if len(data) % block_size:
        raise InvalidBlockLengthError(
            f"data length {len(data)} is not a multiple of the block size {block_size}"
        )
    if padding is Padding.NONE:
        return data
    if not data:
        raise InvalidBlockLengthError("padded data must contain at least one block")
    last = data[-block_size:]
    if padding is Padding.PKCS7:
        n = last[-1]
        # Examine the whole last block without an early exit.
        bad = int(n == 0 or n > block_size)
        for i in range(block_size):
            inside = int(i >= block_size - n)
            bad |= inside & int(last[i] != n)
        if bad:
            raise PaddingError("PKCS#7 padding is malformed")
        return data[:-n]
    stripped = last.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise PaddingError("ISO 9797-1 method 2 padding is malformed")
    return data[: len(data) - block_size + len(stripped) - 1]
