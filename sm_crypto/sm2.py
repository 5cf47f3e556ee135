"""SM2 public-key cryptography (GB/T 32918) on the recommended curve.

Signatures: ``e = SM3(Z || M)`` with
``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)``; the default user ID
is ``DEFAULT_UID = b"1234567812345678"`` (GM/T 0009). Signatures are 64 bytes
``r || s`` (each 32-byte big-endian) or DER ``SEQUENCE { r, s }`` via the
``*_der`` methods.

Encryption: ciphertext ``C1 || C3 || C2`` (GB/T 32918.4-2016 order, the
default) or ``C1 || C2 || C3`` (:class:`CipherOrder`), with C1 the
uncompressed point ``04 || x || y``; ``encrypt_der`` / ``decrypt_der`` use the
GM/T 0009 ``SM2Cipher`` DER form that OpenSSL reads and writes. Empty
plaintexts are refused.

Backends (see docs/crypto.md): ``"openssl"`` (system libcrypto.so.3 via
ctypes, used by default when its self-test passes), ``"pure"`` (pure Python
with gmpy2) and ``"pure-int"`` (pure Python, built-in ints). Operations with
an explicit nonce ``k`` (test vectors) always run in pure Python.

Errors: InvalidKeyError (bad private key or key encoding), InvalidPointError
(bad public point), InvalidSignatureError (malformed, out of range or not
verifying), DecryptionError (truncated, malformed C1, C3 mismatch),
InvalidParameterError (bad digest length, k out of range or unusable,
over-long user ID, empty plaintext), BackendUnavailableError.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Iterator
from typing import cast

from sm_crypto._bytes import as_bytes
from sm_crypto._der import DerError, decode_flat_sequence, encode_flat_sequence
from sm_crypto._ec import GMPY2_AVAILABLE, CurveArithmetic, Point
from sm_crypto._resources import load_toml
from sm_crypto._sm2_asn1 import (
    decode_private_key,
    decode_spki,
    encode_pkcs8,
    encode_spki,
    pem_decode,
    pem_encode,
)
from sm_crypto._sm2_backends import PrivateHandle, PublicHandle, PureBackend, Sm2Backend
from sm_crypto._sm2_core import (
    SM2_CURVE,
    arithmetic,
    encrypt_with,
    point_to_bytes,
    random_scalar,
    sign_with,
    z_digest,
)
from sm_crypto.errors import (
    BackendUnavailableError,
    DecryptionError,
    InvalidKeyError,
    InvalidParameterError,
    InvalidPointError,
    InvalidSignatureError,
)
from sm_crypto.sm3 import SM3_DIGEST_SIZE, new_sm3

__all__ = [
    "DEFAULT_UID",
    "CipherOrder",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "available_backends",
    "backend_name",
    "set_backend",
    "signature_from_der",
    "signature_to_der",
    "using_backend",
    "z_value",
]

DEFAULT_UID: bytes = load_toml("sm2.toml")["defaults"]["uid"].encode("ascii")

_N = SM2_CURVE.n
_SIZE = SM2_CURVE.byte_length
_C1_LEN = 1 + 2 * _SIZE
_Z_CACHE_LIMIT = 8


class CipherOrder(enum.Enum):
    """Component order of a raw SM2 ciphertext."""

    C1C3C2 = "C1C3C2"
    C1C2C3 = "C1C2C3"


# -- backend selection ---------------------------------------------------------

_backend_lock = threading.Lock()
_backends: dict[str, Sm2Backend] = {}
_openssl_failure: str | None = None
_current: Sm2Backend | None = None


def _pure(name: str) -> Sm2Backend:
    backend = _backends.get(name)
    if backend is None:
        backend = PureBackend(name, arithmetic(name == "pure" and GMPY2_AVAILABLE))
        _backends[name] = backend
    return backend


def _openssl() -> Sm2Backend | None:
    global _openssl_failure
    backend = _backends.get("openssl")
    if backend is not None or _openssl_failure is not None:
        return backend
    from sm_crypto._openssl import load_openssl_backend

    try:
        backend = load_openssl_backend()
    except BackendUnavailableError as exc:
        _openssl_failure = exc.message
        return None
    _backends["openssl"] = backend
    return backend


def _get(name: str) -> Sm2Backend:
    with _backend_lock:
        if name in ("pure", "pure-int"):
            return _pure(name)
        if name == "openssl":
            backend = _openssl()
            if backend is None:
                raise BackendUnavailableError(f"OpenSSL SM2 backend unavailable: {_openssl_failure}")
            return backend
    raise BackendUnavailableError(f"unknown SM2 backend {name!r}")


def available_backends() -> tuple[str, ...]:
    """Names of the backends usable here, fastest-preferred first."""
    with _backend_lock:
        names = ["openssl"] if _openssl() is not None else []
    return (*names, "pure", "pure-int")


def _active() -> Sm2Backend:
    global _current
    backend = _current
    if backend is None:
        backend = _get(available_backends()[0])
        _current = backend
    return backend


def backend_name() -> str:
    """Name of the backend in use."""
    return _active().name


def set_backend(name: str) -> None:
    """Select ``"openssl"``, ``"pure"`` or ``"pure-int"`` for all keys."""
    global _current
    _current = _get(name)


@contextlib.contextmanager
def using_backend(name: str) -> Iterator[None]:
    """Temporarily select a backend (process-wide; meant for tests and benchmarks)."""
    global _current
    previous = _active()
    set_backend(name)
    try:
        yield
    finally:
        _current = previous


# -- helpers ---------------------------------------------------------------------


def _check_uid(uid: bytes) -> bytes:
    return as_bytes(uid, "uid")


def _digest_int(e: bytes) -> bytes:
    e = as_bytes(e, "e")
    if len(e) != SM3_DIGEST_SIZE:
        raise InvalidParameterError(f"digest e must be {SM3_DIGEST_SIZE} bytes, got {len(e)}")
    return e


def _fixed_nonce_arithmetic() -> CurveArithmetic:
    """Arithmetic for explicit-nonce operations: the active pure backend's, else gmpy2/int default."""
    backend = _active()
    return backend.arith if isinstance(backend, PureBackend) else arithmetic()


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError("k must be int")
    if not 1 <= k < _N:
        raise InvalidParameterError("nonce k must be in [1, n-1]")
    return k


def _raw_signature(r: int, s: int) -> bytes:
    return r.to_bytes(_SIZE, "big") + s.to_bytes(_SIZE, "big")


def _split_signature(signature: bytes) -> tuple[int, int]:
    signature = as_bytes(signature, "signature")
    if len(signature) != 2 * _SIZE:
        raise InvalidSignatureError(f"signature must be {2 * _SIZE} bytes r||s, got {len(signature)}")
    r = int.from_bytes(signature[:_SIZE], "big")
    s = int.from_bytes(signature[_SIZE:], "big")
    if not (1 <= r < _N and 1 <= s < _N):
        raise InvalidSignatureError("signature component r or s is out of range [1, n-1]")
    return r, s


def signature_to_der(signature: bytes) -> bytes:
    """Convert a raw 64-byte ``r || s`` signature to DER."""
    r, s = _split_signature(signature)
    return encode_flat_sequence([r, s])


def signature_from_der(der: bytes) -> bytes:
    """Convert a DER signature to raw ``r || s`` (strict DER, range-checked)."""
    der = as_bytes(der, "signature")
    try:
        r, s = decode_flat_sequence(der, "ii")
    except DerError as exc:
        raise InvalidSignatureError(f"malformed DER signature: {exc}") from exc
    r_int, s_int = cast(int, r), cast(int, s)
    if not (1 <= r_int < _N and 1 <= s_int < _N):
        raise InvalidSignatureError("signature component r or s is out of range [1, n-1]")
    return _raw_signature(r_int, s_int)


def _decode_point(data: bytes) -> Point:
    data = as_bytes(data, "public key")
    if len(data) == 2 * _SIZE:
        data = b"\x04" + data
    if not data:
        raise InvalidPointError("empty point encoding")
    prefix = data[0]
    if prefix == 4 and len(data) == _C1_LEN:
        x = int.from_bytes(data[1 : 1 + _SIZE], "big")
        y = int.from_bytes(data[1 + _SIZE :], "big")
        if not arithmetic().is_on_curve(x, y):
            raise InvalidPointError("point is not on the SM2 curve")
        return (x, y)
    if prefix in (2, 3) and len(data) == 1 + _SIZE:
        return arithmetic().decompress(int.from_bytes(data[1:], "big"), prefix == 3)
    if prefix == 0 and len(data) == 1:
        raise InvalidPointError("the point at infinity is not a valid key")
    raise InvalidPointError(f"unsupported point encoding (prefix {prefix:#04x}, {len(data)} bytes)")


# -- keys --------------------------------------------------------------------------


class Sm2PublicKey:
    """An SM2 public key (a validated point on the recommended curve)."""

    __slots__ = ("_handle", "_z_cache")

    def __init__(self, x: int, y: int) -> None:
        if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, int) or not isinstance(y, int):
            raise TypeError("coordinates must be int")
        if not arithmetic().is_on_curve(x, y):
            raise InvalidPointError("point is not on the SM2 curve")
        self._handle = PublicHandle((x, y))
        self._z_cache: dict[bytes, bytes] = {}

    @classmethod
    def _from_handle(cls, handle: PublicHandle) -> Sm2PublicKey:
        key = cls.__new__(cls)
        key._handle = handle
        key._z_cache = {}
        return key

    @classmethod
    def from_coordinates(cls, x: int, y: int) -> Sm2PublicKey:
        """Public key from affine coordinates."""
        return cls(x, y)

    @classmethod
    def from_bytes(cls, data: bytes) -> Sm2PublicKey:
        """Decode ``04||x||y`` (65 bytes), ``02/03||x`` (33 bytes) or raw ``x||y`` (64 bytes)."""
        x, y = _decode_point(data)
        return cls._from_handle(PublicHandle((x, y)))

    @classmethod
    def from_der(cls, der: bytes) -> Sm2PublicKey:
        """Decode a DER SubjectPublicKeyInfo."""
        return cls.from_bytes(decode_spki(as_bytes(der, "der")))

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2PublicKey:
        """Decode a ``PUBLIC KEY`` PEM block."""
        _label, der = pem_decode(as_bytes(data, "pem"), ("PUBLIC KEY",))
        return cls.from_der(der)

    @property
    def x(self) -> int:
        return self._handle.point[0]

    @property
    def y(self) -> int:
        return self._handle.point[1]

    def to_bytes(self, compressed: bool = False) -> bytes:
        """SEC 1 encoding, uncompressed ``04||x||y`` by default."""
        return point_to_bytes(self._handle.point, _SIZE, compressed)

    def to_der(self) -> bytes:
        """DER SubjectPublicKeyInfo (id-ecPublicKey, SM2 curve)."""
        return encode_spki(self.to_bytes())

    def to_pem(self) -> bytes:
        """``PUBLIC KEY`` PEM."""
        return pem_encode(self.to_der(), "PUBLIC KEY")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sm2PublicKey):
            return NotImplemented
        return self._handle.point == other._handle.point

    def __hash__(self) -> int:
        return hash(self._handle.point)

    def __repr__(self) -> str:
        return f"Sm2PublicKey(x={self.x:064x}, y={self.y:064x})"

    # -- Z and digests ---------------------------------------------------------

    def z_value(self, uid: bytes = DEFAULT_UID) -> bytes:
        """Z_A for this key and user ID."""
        uid = _check_uid(uid)
        z = self._z_cache.get(uid)
        if z is None:
            z = z_digest(SM2_CURVE, self.x, self.y, uid)
            if len(self._z_cache) >= _Z_CACHE_LIMIT:
                self._z_cache.clear()
            self._z_cache[uid] = z
        return z

    def message_digest(self, message: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """e = SM3(Z || M)."""
        message = as_bytes(message, "message")
        h = new_sm3()
        h.update(self.z_value(uid))
        h.update(message)
        return h.finalize()

    # -- verification ----------------------------------------------------------

    def verify_digest(self, signature: bytes, e: bytes) -> None:
        """Verify a raw signature over a precomputed digest e; raise InvalidSignatureError."""
        e = _digest_int(e)
        r, s = _split_signature(signature)
        if not _active().verify_digest(self._handle, e, r, s):
            raise InvalidSignatureError("SM2 signature does not verify")

    def verify(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_UID) -> None:
        """Verify a raw 64-byte ``r || s`` signature; raise InvalidSignatureError."""
        self.verify_digest(signature, self.message_digest(message, uid))

    def verify_der(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_UID) -> None:
        """Verify a DER signature; raise InvalidSignatureError."""
        self.verify(signature_from_der(signature), message, uid)

    # -- encryption ------------------------------------------------------------

    def _encrypt_parts(self, plaintext: bytes, k: int | None) -> tuple[Point, bytes, bytes]:
        plaintext = as_bytes(plaintext, "plaintext")
        if not plaintext:
            raise InvalidParameterError("SM2 cannot encrypt an empty plaintext")
        if k is None:
            return _active().encrypt(self._handle, plaintext)
        result = encrypt_with(_fixed_nonce_arithmetic(), self._handle.point, plaintext, _check_k(k))
        if result is None:
            raise InvalidParameterError("nonce k is unusable for this plaintext")
        return result

    def encrypt(
        self,
        plaintext: bytes,
        order: CipherOrder = CipherOrder.C1C3C2,
        *,
        k: int | None = None,
    ) -> bytes:
        """Encrypt to raw ``C1||C3||C2`` (or ``C1||C2||C3``). ``k`` only for test vectors."""
        if not isinstance(order, CipherOrder):
            raise TypeError("order must be a CipherOrder")
        c1, c3, c2 = self._encrypt_parts(plaintext, k)
        head = point_to_bytes(c1, _SIZE)
        return head + c3 + c2 if order is CipherOrder.C1C3C2 else head + c2 + c3

    def encrypt_der(self, plaintext: bytes, *, k: int | None = None) -> bytes:
        """Encrypt to the GM/T 0009 DER ``SM2Cipher`` (as ``openssl pkeyutl -encrypt``)."""
        (x, y), c3, c2 = self._encrypt_parts(plaintext, k)
        return encode_flat_sequence([x, y, c3, c2])


class Sm2PrivateKey:
    """An SM2 private key d in [1, n-2] with its public key."""

    __slots__ = ("_handle", "_public")

    def __init__(self, d: int) -> None:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError("private key must be int")
        if not 1 <= d <= _N - 2:
            raise InvalidKeyError("SM2 private key must be in [1, n-2]")
        point = arithmetic().mul_base(d)
        if point is None:
            raise InvalidKeyError("SM2 private key gives the point at infinity")
        public = PublicHandle(point)
        self._handle = PrivateHandle(d, pow(1 + d, -1, _N), public)
        self._public = Sm2PublicKey._from_handle(public)

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        """New key from the OS CSPRNG."""
        return cls(random_scalar(_N - 1))

    @classmethod
    def from_int(cls, d: int) -> Sm2PrivateKey:
        return cls(d)

    @classmethod
    def from_bytes(cls, data: bytes) -> Sm2PrivateKey:
        """From the 32-byte big-endian scalar."""
        data = as_bytes(data, "private key")
        if len(data) != _SIZE:
            raise InvalidKeyError(f"SM2 private key must be {_SIZE} bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def from_der(cls, der: bytes) -> Sm2PrivateKey:
        """From DER PKCS#8 PrivateKeyInfo or SEC 1 ECPrivateKey."""
        d, public = decode_private_key(as_bytes(der, "der"))
        key = cls(d)
        if public is not None:
            try:
                embedded = _decode_point(public)
            except InvalidPointError as exc:
                raise InvalidKeyError("embedded public key is invalid") from exc
            if embedded != key._handle.public.point:
                raise InvalidKeyError("embedded public key does not match the private key")
        return key

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2PrivateKey:
        """From ``PRIVATE KEY`` (PKCS#8) or ``EC PRIVATE KEY`` (SEC 1) PEM."""
        _label, der = pem_decode(as_bytes(data, "pem"), ("PRIVATE KEY", "EC PRIVATE KEY"))
        return cls.from_der(der)

    def to_bytes(self) -> bytes:
        """32-byte big-endian scalar. Handle as a secret."""
        return self._handle.d.to_bytes(_SIZE, "big")

    def to_der(self) -> bytes:
        """DER PKCS#8 PrivateKeyInfo (unencrypted). Handle as a secret."""
        return encode_pkcs8(self._handle.d, self._public.to_bytes())

    def to_pem(self) -> bytes:
        """``PRIVATE KEY`` PEM (unencrypted PKCS#8). Handle as a secret."""
        return pem_encode(self.to_der(), "PRIVATE KEY")

    def public_key(self) -> Sm2PublicKey:
        return self._public

    def __repr__(self) -> str:
        return f"Sm2PrivateKey(public x={self._public.x:064x})"

    def __reduce__(self) -> str:
        raise TypeError("Sm2PrivateKey objects cannot be pickled")

    # -- signing ---------------------------------------------------------------

    def sign_digest(self, e: bytes, k: int | None = None) -> bytes:
        """Sign a 32-byte digest e; returns raw ``r || s``. ``k`` only for test vectors."""
        e = _digest_int(e)
        if k is None:
            r, s = _active().sign_digest(self._handle, e)
            return _raw_signature(r, s)
        h = self._handle
        result = sign_with(
            _fixed_nonce_arithmetic(),
            h.d,
            int.from_bytes(e, "big"),
            _check_k(k),
            h.d1_inv,
        )
        if result is None:
            raise InvalidParameterError("nonce k is unusable for this message")
        return _raw_signature(*result)

    def sign(self, message: bytes, uid: bytes = DEFAULT_UID, k: int | None = None) -> bytes:
        """Sign ``message`` with user ID ``uid``; returns raw 64-byte ``r || s``."""
        return self.sign_digest(self._public.message_digest(message, uid), k)

    def sign_der(self, message: bytes, uid: bytes = DEFAULT_UID, k: int | None = None) -> bytes:
        """Like :meth:`sign` but DER-encoded."""
        return signature_to_der(self.sign(message, uid, k))

    # -- decryption ------------------------------------------------------------

    def _decrypt_parts(self, c1: Point, c3: bytes, c2: bytes) -> bytes:
        return _active().decrypt(self._handle, c1, c3, c2)

    def decrypt(self, ciphertext: bytes, order: CipherOrder = CipherOrder.C1C3C2) -> bytes:
        """Decrypt a raw ciphertext; raise DecryptionError if truncated, malformed or tampered."""
        if not isinstance(order, CipherOrder):
            raise TypeError("order must be a CipherOrder")
        ciphertext = as_bytes(ciphertext, "ciphertext")
        if len(ciphertext) < _C1_LEN + SM3_DIGEST_SIZE + 1:
            raise DecryptionError("ciphertext is truncated")
        c1 = _ciphertext_point(ciphertext[:_C1_LEN])
        body = ciphertext[_C1_LEN:]
        if order is CipherOrder.C1C3C2:
            c3, c2 = body[:SM3_DIGEST_SIZE], body[SM3_DIGEST_SIZE:]
        else:
            c2, c3 = body[:-SM3_DIGEST_SIZE], body[-SM3_DIGEST_SIZE:]
        return self._decrypt_parts(c1, c3, c2)

    def decrypt_der(self, ciphertext: bytes) -> bytes:
        """Decrypt a GM/T 0009 DER ``SM2Cipher``."""
        ciphertext = as_bytes(ciphertext, "ciphertext")
        try:
            x, y, c3, c2 = decode_flat_sequence(ciphertext, "iioo")
        except DerError as exc:
            raise DecryptionError(f"malformed DER ciphertext: {exc}") from exc
        x_int, y_int = cast(int, x), cast(int, y)
        c3_b, c2_b = cast(bytes, c3), cast(bytes, c2)
        if len(c3_b) != SM3_DIGEST_SIZE or not c2_b:
            raise DecryptionError("DER ciphertext has a wrong hash length or no data")
        if not arithmetic().is_on_curve(x_int, y_int):
            raise DecryptionError("ciphertext point C1 is not on the curve")
        return self._decrypt_parts((x_int, y_int), c3_b, c2_b)


def _ciphertext_point(data: bytes) -> Point:
    if data[0] != 4:
        raise DecryptionError("ciphertext point C1 must be uncompressed (04||x||y)")
    try:
        return _decode_point(data)
    except InvalidPointError as exc:
        raise DecryptionError("ciphertext point C1 is not on the curve") from exc


def z_value(public_key: Sm2PublicKey, uid: bytes = DEFAULT_UID) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    return public_key.z_value(uid)
