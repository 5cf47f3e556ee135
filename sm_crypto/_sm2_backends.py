"""SM2 backends: the interface, key handles, and the pure-Python backend.

A backend performs the four operations that use a random nonce or a secret
scalar; everything else (Z, e, encodings, range checks, fixed-nonce
operations for test vectors) is shared code in :mod:`sm_crypto._sm2_core`.
The OpenSSL backend lives in :mod:`sm_crypto._openssl`.
"""

from __future__ import annotations

from typing import Any, Protocol

from sm_crypto._ec import CurveArithmetic, Point
from sm_crypto._sm2_core import (
    decrypt_with,
    encrypt_with,
    random_scalar,
    sign_with,
    verify_with,
)

__all__ = ["PrivateHandle", "PublicHandle", "PureBackend", "Sm2Backend"]


class PublicHandle:
    """Validated public point plus per-backend native objects (e.g. EVP_PKEY)."""

    __slots__ = ("__weakref__", "native", "point")

    def __init__(self, point: Point) -> None:
        self.point = point
        self.native: dict[str, Any] = {}

    # A handle is an immutable value whose native objects it owns and frees
    # when collected: a copy is the handle itself (a copy of ``native`` would
    # hold pointers freed with the original), and a pickle carries the point.
    def __copy__(self) -> PublicHandle:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PublicHandle:
        return self

    def __reduce__(self) -> tuple[type[PublicHandle], tuple[Point]]:
        return (PublicHandle, (self.point,))


class PrivateHandle:
    """Secret scalar, (1 + d)^-1 mod n, the public handle, and native objects."""

    __slots__ = ("__weakref__", "d", "d1_inv", "native", "public")

    def __init__(self, d: int, d1_inv: int, public: PublicHandle) -> None:
        self.d = d
        self.d1_inv = d1_inv
        self.public = public
        self.native: dict[str, Any] = {}

    def __copy__(self) -> PrivateHandle:
        return self  # immutable, owns its native objects: see PublicHandle

    def __deepcopy__(self, memo: dict[int, Any]) -> PrivateHandle:
        return self


class Sm2Backend(Protocol):
    """Operations a backend provides; ``e`` is the 32-byte message digest."""

    name: str

    def sign_digest(self, key: PrivateHandle, e: bytes) -> tuple[int, int]: ...

    def verify_digest(self, key: PublicHandle, e: bytes, r: int, s: int) -> bool: ...

    def encrypt(self, key: PublicHandle, message: bytes) -> tuple[Point, bytes, bytes]: ...

    def decrypt(self, key: PrivateHandle, c1: Point, c3: bytes, c2: bytes) -> bytes: ...


class PureBackend:
    """Pure-Python backend (gmpy2 field arithmetic when available)."""

    def __init__(self, name: str, arith: CurveArithmetic) -> None:
        self.name = name
        self.arith = arith

    def sign_digest(self, key: PrivateHandle, e: bytes) -> tuple[int, int]:
        n = self.arith.curve.n
        e_int = int.from_bytes(e, "big")
        while True:
            result = sign_with(self.arith, key.d, e_int, random_scalar(n), key.d1_inv)
            if result is not None:
                return result

    def verify_digest(self, key: PublicHandle, e: bytes, r: int, s: int) -> bool:
        return verify_with(self.arith, key.point, int.from_bytes(e, "big"), r, s)

    def encrypt(self, key: PublicHandle, message: bytes) -> tuple[Point, bytes, bytes]:
        n = self.arith.curve.n
        while True:
            result = encrypt_with(self.arith, key.point, message, random_scalar(n))
            if result is not None:
                return result

    def decrypt(self, key: PrivateHandle, c1: Point, c3: bytes, c2: bytes) -> bytes:
        return decrypt_with(self.arith, key.d, c1, c3, c2)
