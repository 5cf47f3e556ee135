"""SM3 hash (GB/T 32905), HMAC-SM3 and the SM3 key derivation function of
GB/T 32918.4 section 5.4.3.

Backend: ``cryptography``'s ``hashes.SM3`` (OpenSSL). A prepared hash object
is copied for every call, which avoids the per-call algorithm lookup.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

from sm_crypto._bytes import as_bytes
from sm_crypto.errors import InvalidParameterError

__all__ = ["SM3_DIGEST_SIZE", "hmac_sm3", "new_sm3", "sm3", "sm3_kdf"]

SM3_DIGEST_SIZE = 32
_KDF_MAX_BLOCKS = 0xFFFFFFFF

_PROTOTYPE = hashes.Hash(hashes.SM3())


def new_sm3() -> hashes.Hash:
    """Return a fresh incremental SM3 context (``update`` / ``finalize``)."""
    return _PROTOTYPE.copy()


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes) of ``data``."""
    h = _PROTOTYPE.copy()
    h.update(as_bytes(data, "data"))
    return h.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) with SM3; 32-byte tag."""
    mac = _hmac.HMAC(as_bytes(key, "key"), hashes.SM3())
    mac.update(as_bytes(data, "data"))
    return mac.finalize()


def sm3_kdf(z: bytes, klen: int) -> bytes:
    """KDF(Z, klen) of GB/T 32918.4: SM3(Z || ct) for ct = 1, 2, ... (32-bit
    big-endian), concatenated and cut to ``klen`` bytes.

    ``klen`` is a byte count (the standard counts bits; SM2 only uses whole
    bytes). Raises InvalidParameterError if ``klen`` is negative or needs
    more than 2**32 - 1 hash blocks.
    """
    z = as_bytes(z, "z")
    if isinstance(klen, bool) or not isinstance(klen, int):
        raise TypeError("klen must be int")
    if klen < 0:
        raise InvalidParameterError("KDF output length must not be negative")
    blocks = -(-klen // SM3_DIGEST_SIZE)
    if blocks > _KDF_MAX_BLOCKS:
        raise InvalidParameterError("KDF output length too large")
    base = _PROTOTYPE.copy()
    base.update(z)
    out = bytearray()
    for ct in range(1, blocks + 1):
        h = base.copy()
        h.update(ct.to_bytes(4, "big"))
        out += h.finalize()
    return bytes(out[:klen])
