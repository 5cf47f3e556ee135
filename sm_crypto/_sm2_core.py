"""SM2 protocol steps (GB/T 32918.2 and .4) over :class:`CurveArithmetic`.

These functions work on integers and points of any curve so the standard's
examples on its 256-bit example curve can be checked too; the public
classes in :mod:`sm_crypto.sm2` bind them to the recommended curve.
"""

from __future__ import annotations

import functools
import hmac
import secrets

from sm_crypto._ec import GMPY2_AVAILABLE, Curve, CurveArithmetic, Point
from sm_crypto._resources import load_toml
from sm_crypto.errors import DecryptionError, InvalidParameterError
from sm_crypto.sm3 import new_sm3, sm3_kdf

__all__ = [
    "SM2_CURVE",
    "arithmetic",
    "decrypt_with",
    "encrypt_with",
    "point_to_bytes",
    "random_scalar",
    "sign_with",
    "verify_with",
    "z_digest",
]

_MAX_UID_BYTES = 0xFFFF // 8


def _load_curve() -> Curve:
    table = load_toml("sm2.toml")["curve"]
    return Curve(
        name=str(table["name"]),
        p=int(table["p"], 16),
        a=int(table["a"], 16),
        b=int(table["b"], 16),
        n=int(table["n"], 16),
        h=int(table["h"]),
        gx=int(table["gx"], 16),
        gy=int(table["gy"], 16),
    )


SM2_CURVE = _load_curve()


@functools.cache
def arithmetic(use_gmpy2: bool = GMPY2_AVAILABLE) -> CurveArithmetic:
    """Shared arithmetic object for the recommended curve."""
    return CurveArithmetic(SM2_CURVE, use_gmpy2=use_gmpy2)


def random_scalar(n: int) -> int:
    """Uniform secret integer in [1, n-1] from the OS CSPRNG."""
    return secrets.randbelow(n - 1) + 1


def z_digest(curve: Curve, x: int, y: int, uid: bytes) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    if len(uid) > _MAX_UID_BYTES:
        raise InvalidParameterError(f"user ID longer than {_MAX_UID_BYTES} bytes")
    size = curve.byte_length
    h = new_sm3()
    h.update((len(uid) * 8).to_bytes(2, "big"))
    h.update(uid)
    for value in (curve.a, curve.b, curve.gx, curve.gy, x, y):
        h.update(value.to_bytes(size, "big"))
    return h.finalize()


def sign_with(
    arith: CurveArithmetic, d: int, e: int, k: int, d1_inv: int | None = None
) -> tuple[int, int] | None:
    """One signing attempt with nonce ``k``; ``None`` if this k must be rejected."""
    n = arith.curve.n
    point = arith.mul_base(k)
    if point is None:
        return None
    r = (e + point[0]) % n
    if r == 0 or r + k == n:
        return None
    if d1_inv is None:
        d1_inv = pow(1 + d, -1, n)
    s = d1_inv * (k - r * d) % n
    if s == 0:
        return None
    return r, s


def verify_with(arith: CurveArithmetic, q: Point, e: int, r: int, s: int) -> bool:
    """Verification steps B1..B7 on integers (range checks included)."""
    n = arith.curve.n
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    point = arith.mul_add(s, q, t)
    if point is None:
        return False
    return (e + point[0]) % n == r


def _xor(data: bytes, pad: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")


def _c3(x2: int, message: bytes, y2: int, size: int) -> bytes:
    h = new_sm3()
    h.update(x2.to_bytes(size, "big"))
    h.update(message)
    h.update(y2.to_bytes(size, "big"))
    return h.finalize()


def encrypt_with(
    arith: CurveArithmetic, q: Point, message: bytes, k: int
) -> tuple[Point, bytes, bytes] | None:
    """Encryption steps A2..A8 with nonce ``k``: (C1, C3, C2), or ``None`` to retry."""
    size = arith.curve.byte_length
    c1 = arith.mul_base(k)
    shared = arith.mul(q, k)
    if c1 is None or shared is None:
        return None
    x2, y2 = shared
    t = sm3_kdf(x2.to_bytes(size, "big") + y2.to_bytes(size, "big"), len(message))
    if not any(t):
        return None
    return c1, _c3(x2, message, y2, size), _xor(message, t)


def decrypt_with(arith: CurveArithmetic, d: int, c1: Point, c3: bytes, c2: bytes) -> bytes:
    """Decryption steps B1..B7; C1 must already be validated as a curve point."""
    size = arith.curve.byte_length
    shared = arith.mul(c1, d)
    if shared is None:
        raise DecryptionError("ciphertext point C1 is invalid")
    x2, y2 = shared
    t = sm3_kdf(x2.to_bytes(size, "big") + y2.to_bytes(size, "big"), len(c2))
    if not any(t):
        raise DecryptionError("ciphertext is invalid (KDF output is zero)")
    message = _xor(c2, t)
    if not hmac.compare_digest(_c3(x2, message, y2, size), c3):
        raise DecryptionError("ciphertext check value C3 does not match")
    return message


def point_to_bytes(point: Point, size: int, compressed: bool = False) -> bytes:
    """SEC 1 encoding: ``04||x||y`` or ``02/03||x``."""
    x, y = point
    if compressed:
        return bytes([2 | (y & 1)]) + x.to_bytes(size, "big")
    return b"\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big")
