"""Pure-Python arithmetic on prime-field short-Weierstrass curves (SM2).

Points are affine ``(x, y)`` tuples (``None`` is the point at infinity);
internally Jacobian ``(X, Y, Z)`` with ``x = X/Z^2, y = Y/Z^3`` and ``Z == 0``
for infinity.

* Fixed base ``k*G``: signed radix-2^8 digits and a precomputed affine table of
  ``j * 2^(8i) * G`` (j = 1..128), so one multiplication is about 33 mixed
  additions and no doublings. The table is built on first use (~20 ms).
* Variable base ``k*P``: width-5 NAF with 8 precomputed odd multiples.
* ``k1*G + k2*P`` (signature verification): both of the above, one final add.

Field elements are ``gmpy2.mpz`` when gmpy2 is importable, otherwise Python
``int``; both give identical results. This code is not constant-time; the
OpenSSL backend is preferred for operations on secret scalars when present.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sm_crypto.errors import InvalidPointError

try:
    import gmpy2 as _gmpy2
except ImportError:  # pragma: no cover - exercised through use_gmpy2=False
    _gmpy2 = None

__all__ = ["GMPY2_AVAILABLE", "Curve", "CurveArithmetic", "Point"]

GMPY2_AVAILABLE = _gmpy2 is not None

Point = tuple[int, int]
_Jac = tuple[Any, Any, Any]

_FIXED_WINDOW = 8
_WNAF_WIDTH = 5


@dataclass(frozen=True)
class Curve:
    """Domain parameters of y^2 = x^3 + a x + b over GF(p), base point G of order n."""

    name: str
    p: int
    a: int
    b: int
    n: int
    h: int
    gx: int
    gy: int

    @property
    def byte_length(self) -> int:
        return (self.p.bit_length() + 7) // 8

    @property
    def order_byte_length(self) -> int:
        return (self.n.bit_length() + 7) // 8


class CurveArithmetic:
    """Group operations on one curve, with ``int`` or ``gmpy2.mpz`` field elements."""

    def __init__(self, curve: Curve, *, use_gmpy2: bool = GMPY2_AVAILABLE) -> None:
        if use_gmpy2 and _gmpy2 is None:
            raise RuntimeError("gmpy2 is not installed")
        self.curve = curve
        self.uses_gmpy2 = use_gmpy2
        num: Callable[[int], Any] = _gmpy2.mpz if use_gmpy2 and _gmpy2 else int
        self._num = num
        self._p = num(curve.p)
        self._a = num(curve.a)
        self._b = num(curve.b)
        self._a_is_minus_3 = (curve.a + 3) % curve.p == 0
        self._table: list[list[tuple[Any, Any]]] | None = None
        self._table_lock = threading.Lock()

    # -- field helpers -------------------------------------------------------

    def _inv(self, x: Any) -> Any:
        if self.uses_gmpy2 and _gmpy2 is not None:
            return _gmpy2.invert(x, self._p)
        return pow(x, -1, self._p)

    def is_on_curve(self, x: int, y: int) -> bool:
        p = self.curve.p
        if not (0 <= x < p and 0 <= y < p):
            return False
        return (y * y - (x * x * x + self.curve.a * x + self.curve.b)) % p == 0

    def decompress(self, x: int, y_odd: bool) -> Point:
        """Recover y from x and its parity; raise InvalidPointError if x is not on the curve."""
        p = self.curve.p
        if not 0 <= x < p:
            raise InvalidPointError("x coordinate out of range")
        if p % 4 != 3:
            raise InvalidPointError("point decompression needs p = 3 mod 4")
        rhs = (x * x * x + self.curve.a * x + self.curve.b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if (y * y - rhs) % p:
            raise InvalidPointError("x coordinate is not on the curve")
        if (y & 1) != int(y_odd):
            y = (p - y) % p
        return (x, y)

    # -- Jacobian primitives -------------------------------------------------

    def _dbl(self, X: Any, Y: Any, Z: Any) -> _Jac:
        p = self._p
        if self._a_is_minus_3:
            # dbl-2001-b
            delta = Z * Z % p
            gamma = Y * Y % p
            beta = X * gamma % p
            alpha = 3 * (X - delta) * (X + delta) % p
            X3 = (alpha * alpha - 8 * beta) % p
            Z3 = ((Y + Z) * (Y + Z) - gamma - delta) % p
            Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
            return (X3, Y3, Z3)
        # dbl-2007-bl
        XX = X * X % p
        YY = Y * Y % p
        YYYY = YY * YY % p
        ZZ = Z * Z % p
        S = 2 * ((X + YY) * (X + YY) - XX - YYYY) % p
        M = (3 * XX + self._a * ZZ * ZZ) % p
        T = (M * M - 2 * S) % p
        Y3 = (M * (S - T) - 8 * YYYY) % p
        Z3 = ((Y + Z) * (Y + Z) - YY - ZZ) % p
        return (T, Y3, Z3)

    def _madd(self, X1: Any, Y1: Any, Z1: Any, x2: Any, y2: Any) -> _Jac:
        """Jacobian + affine (mixed addition), handling every special case."""
        p = self._p
        if not Z1:
            return (x2, y2, self._num(1))
        Z1Z1 = Z1 * Z1 % p
        H = (x2 * Z1Z1 - X1) % p
        R = (y2 * Z1 * Z1Z1 - Y1) % p
        if not H:
            if not R:
                return self._dbl(X1, Y1, Z1)
            return (self._num(1), self._num(1), self._num(0))
        HH = H * H % p
        HHH = H * HH % p
        V = X1 * HH % p
        X3 = (R * R - HHH - 2 * V) % p
        Y3 = (R * (V - X3) - Y1 * HHH) % p
        Z3 = Z1 * H % p
        return (X3, Y3, Z3)

    def _add(self, P: _Jac, Q: _Jac) -> _Jac:
        """Jacobian + Jacobian (add-1998-cmo-2), handling every special case."""
        X1, Y1, Z1 = P
        X2, Y2, Z2 = Q
        if not Z1:
            return Q
        if not Z2:
            return P
        p = self._p
        Z1Z1 = Z1 * Z1 % p
        Z2Z2 = Z2 * Z2 % p
        U1 = X1 * Z2Z2 % p
        U2 = X2 * Z1Z1 % p
        S1 = Y1 * Z2 * Z2Z2 % p
        S2 = Y2 * Z1 * Z1Z1 % p
        H = (U2 - U1) % p
        R = (S2 - S1) % p
        if not H:
            if not R:
                return self._dbl(X1, Y1, Z1)
            return (self._num(1), self._num(1), self._num(0))
        HH = H * H % p
        HHH = H * HH % p
        V = U1 * HH % p
        X3 = (R * R - HHH - 2 * V) % p
        Y3 = (R * (V - X3) - S1 * HHH) % p
        Z3 = Z1 * Z2 * H % p
        return (X3, Y3, Z3)

    def _to_affine(self, P: _Jac) -> Point | None:
        X, Y, Z = P
        if not Z:
            return None
        p = self._p
        zi = self._inv(Z)
        zi2 = zi * zi % p
        return (int(X * zi2 % p), int(Y * zi2 * zi % p))

    def _batch_to_affine(self, points: list[_Jac]) -> list[tuple[Any, Any]]:
        """Normalise many finite Jacobian points with one inversion (Montgomery's trick)."""
        p = self._p
        prefix = []
        acc = self._num(1)
        for _, _, Z in points:
            prefix.append(acc)
            acc = acc * Z % p
        inv = self._inv(acc)
        out: list[tuple[Any, Any]] = [(0, 0)] * len(points)
        for i in range(len(points) - 1, -1, -1):
            X, Y, Z = points[i]
            zi = inv * prefix[i] % p
            inv = inv * Z % p
            zi2 = zi * zi % p
            out[i] = (X * zi2 % p, Y * zi2 * zi % p)
        return out

    # -- fixed base ----------------------------------------------------------

    def _fixed_table(self) -> list[list[tuple[Any, Any]]]:
        table = self._table
        if table is not None:
            return table
        with self._table_lock:
            if self._table is None:
                self._table = self._build_fixed_table()
            return self._table

    def _build_fixed_table(self) -> list[list[tuple[Any, Any]]]:
        half = 1 << (_FIXED_WINDOW - 1)
        windows = (self.curve.n.bit_length() + 1 + _FIXED_WINDOW - 1) // _FIXED_WINDOW
        base = (self._num(self.curve.gx), self._num(self.curve.gy))
        table = []
        for _ in range(windows):
            bx, by = base
            row: list[_Jac] = [(bx, by, self._num(1))]
            acc = self._dbl(bx, by, self._num(1))
            row.append(acc)
            for _ in range(half - 2):
                acc = self._madd(acc[0], acc[1], acc[2], bx, by)
                row.append(acc)
            nxt = self._dbl(*row[-1])  # 2 * half * base = 2^w * base
            affine = self._batch_to_affine([*row, nxt])
            table.append(affine[:-1])
            base = affine[-1]
        return table

    def mul_base(self, k: int) -> Point | None:
        """k*G for any integer k (reduced mod n)."""
        return self._to_affine(self._mul_base_jac(k % self.curve.n))

    def _mul_base_jac(self, k: int) -> _Jac:
        table = self._fixed_table()
        p = self._p
        w = _FIXED_WINDOW
        mask = (1 << w) - 1
        half = 1 << (w - 1)
        X: Any = self._num(1)
        Y: Any = self._num(1)
        Z: Any = self._num(0)
        i = 0
        while k:
            d = k & mask
            k >>= w
            if d > half:
                d -= 1 << w
                k += 1
            if d:
                x2, y2 = table[i][abs(d) - 1]
                if d < 0:
                    y2 = p - y2
                X, Y, Z = self._madd(X, Y, Z, x2, y2)
            i += 1
        return (X, Y, Z)

    # -- variable base -------------------------------------------------------

    @staticmethod
    def _wnaf(k: int, width: int) -> list[int]:
        digits = []
        full = 1 << width
        half = full >> 1
        while k:
            if k & 1:
                d = k & (full - 1)
                if d >= half:
                    d -= full
                k -= d
            else:
                d = 0
            digits.append(d)
            k >>= 1
        return digits

    def _odd_multiples(self, x: int, y: int, count: int) -> list[tuple[Any, Any]]:
        """Affine P, 3P, 5P, ... (count points); raises if a multiple is infinity."""
        P = (self._num(x), self._num(y), self._num(1))
        twoP = self._dbl(*P)
        jac = [P]
        for _ in range(count - 1):
            jac.append(self._add(jac[-1], twoP))
        if any(not Z for _, _, Z in jac):
            raise InvalidPointError("point has small order")
        return self._batch_to_affine(jac)

    def _mul_jac(self, point: Point, k: int) -> _Jac:
        if not k:
            return (self._num(1), self._num(1), self._num(0))
        pre = self._odd_multiples(point[0], point[1], 1 << (_WNAF_WIDTH - 2))
        p = self._p
        digits = self._wnaf(k, _WNAF_WIDTH)
        X: Any = self._num(1)
        Y: Any = self._num(1)
        Z: Any = self._num(0)
        dbl = self._dbl
        madd = self._madd
        for d in reversed(digits):
            if Z:
                X, Y, Z = dbl(X, Y, Z)
            if d:
                x2, y2 = pre[abs(d) >> 1]
                if d < 0:
                    y2 = p - y2
                X, Y, Z = madd(X, Y, Z, x2, y2)
        return (X, Y, Z)

    def mul(self, point: Point, k: int) -> Point | None:
        """k*P for an affine point P on the curve (k reduced mod n)."""
        return self._to_affine(self._mul_jac(point, k % self.curve.n))

    def mul_add(self, k1: int, point: Point, k2: int) -> Point | None:
        """k1*G + k2*P."""
        n = self.curve.n
        return self._to_affine(self._add(self._mul_base_jac(k1 % n), self._mul_jac(point, k2 % n)))

    def add(self, P: Point | None, Q: Point | None) -> Point | None:
        """Affine point addition (used by tests and key checks)."""
        one = self._num(1)
        zero = self._num(0)
        jp = (self._num(P[0]), self._num(P[1]), one) if P else (one, one, zero)
        jq = (self._num(Q[0]), self._num(Q[1]), one) if Q else (one, one, zero)
        return self._to_affine(self._add(jp, jq))
