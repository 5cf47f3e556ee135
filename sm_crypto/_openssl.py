"""SM2 backend on the system OpenSSL 3 ``libcrypto`` through ctypes.

Only stable EVP entry points are used: keys are imported from their raw
components with ``EVP_PKEY_fromdata`` (group ``SM2``, the uncompressed
point ``pub`` and, for a private key, the scalar ``priv``) and must come out
as ``EVP_PKEY_is_a(pkey, "SM2")``; this costs a third of decoding a
DER SubjectPublicKeyInfo and a seventh of decoding PKCS#8 with
``d2i_AutoPrivateKey`` (which tries every registered decoder), and needs no
DER encoding first (docs/crypto.md, "Key import"). Then ``EVP_PKEY_sign`` /
``EVP_PKEY_verify`` operate on the digest ``e = SM3(Z || M)`` that
sm_crypto computes itself (OpenSSL's SM2 signature provider signs the
input directly when no digest is configured), and ``EVP_PKEY_encrypt`` /
``EVP_PKEY_decrypt`` exchange the GM/T 0009 DER ciphertext, converted to
and from the raw C1/C3/C2 form. Nonces come from OpenSSL's DRBG and scalar
multiplication uses OpenSSL's constant-time code paths.

The backend is enabled only after a self-test against the GB/T 32918.5
examples (verify the published signature, decrypt the published
ciphertext, sign and encrypt round trips checked by the pure-Python code).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sm_crypto._der import DerError, decode_flat_sequence, encode_flat_sequence
from sm_crypto._ec import Point
from sm_crypto._resources import load_toml
from sm_crypto._sm2_backends import PrivateHandle, PublicHandle, PureBackend
from sm_crypto._sm2_core import (
    SM2_CURVE,
    arithmetic,
    point_to_bytes,
    verify_with,
    z_digest,
)
from sm_crypto.errors import BackendUnavailableError, CryptoError, DecryptionError
from sm_crypto.sm3 import sm3

__all__ = ["OpenSslBackend", "load_openssl_backend"]

_NAME = "openssl"
_SIZE = SM2_CURVE.byte_length
_MAX_SIGNATURE = 80
_MIN_VERSION = 0x30000000

_vp = ctypes.c_void_p
_size_p = ctypes.POINTER(ctypes.c_size_t)
_vp_p = ctypes.POINTER(ctypes.c_void_p)

# openssl/core.h: OSSL_PARAM data types; openssl/core_dispatch.h: selections.
_PARAM_UNSIGNED_INTEGER = 2
_PARAM_UTF8_STRING = 4
_PARAM_OCTET_STRING = 5
_SELECT_PUBLIC_KEY = 0x86  # EVP_PKEY_PUBLIC_KEY: all parameters + public key
_SELECT_KEYPAIR = 0x87  # EVP_PKEY_KEYPAIR: the above + private key
_GROUP = b"SM2"


class _Param(ctypes.Structure):
    """``OSSL_PARAM`` (openssl/core.h)."""

    _fields_ = [
        ("key", ctypes.c_char_p),
        ("data_type", ctypes.c_uint),
        ("data", _vp),
        ("data_size", ctypes.c_size_t),
        ("return_size", ctypes.c_size_t),
    ]


_PARAMS_END = _Param(None, 0, None, 0, 0)


def _load_library() -> ctypes.CDLL:
    candidates = ["libcrypto.so.3"]
    found = ctypes.util.find_library("crypto")
    if found and found not in candidates:
        candidates.append(found)
    errors = []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        lib.OpenSSL_version_num.argtypes = []
        if lib.OpenSSL_version_num() >= _MIN_VERSION:
            return lib
        errors.append(f"{name}: OpenSSL older than 3.0")
    raise BackendUnavailableError("no OpenSSL 3 libcrypto found: " + "; ".join(errors))


def _bind(lib: ctypes.CDLL) -> None:
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "EVP_PKEY_CTX_new_from_name": (_vp, [_vp, ctypes.c_char_p, ctypes.c_char_p]),
        "EVP_PKEY_fromdata_init": (ctypes.c_int, [_vp]),
        "EVP_PKEY_fromdata": (ctypes.c_int, [_vp, _vp_p, ctypes.c_int, ctypes.POINTER(_Param)]),
        "EVP_PKEY_is_a": (ctypes.c_int, [_vp, ctypes.c_char_p]),
        "EVP_PKEY_free": (None, [_vp]),
        "EVP_PKEY_CTX_new": (_vp, [_vp, _vp]),
        "EVP_PKEY_CTX_free": (None, [_vp]),
        "EVP_PKEY_sign_init": (ctypes.c_int, [_vp]),
        "EVP_PKEY_verify_init": (ctypes.c_int, [_vp]),
        "EVP_PKEY_encrypt_init": (ctypes.c_int, [_vp]),
        "EVP_PKEY_decrypt_init": (ctypes.c_int, [_vp]),
        "EVP_PKEY_sign": (
            ctypes.c_int,
            [_vp, ctypes.c_char_p, _size_p, ctypes.c_char_p, ctypes.c_size_t],
        ),
        "EVP_PKEY_verify": (
            ctypes.c_int,
            [_vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
        ),
        "EVP_PKEY_encrypt": (
            ctypes.c_int,
            [_vp, ctypes.c_char_p, _size_p, ctypes.c_char_p, ctypes.c_size_t],
        ),
        "EVP_PKEY_decrypt": (
            ctypes.c_int,
            [_vp, ctypes.c_char_p, _size_p, ctypes.c_char_p, ctypes.c_size_t],
        ),
        "ERR_clear_error": (None, []),
    }
    for name, (restype, argtypes) in sigs.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes


class OpenSslBackend:
    """SM2 through OpenSSL 3 EVP."""

    name = _NAME

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._lock = threading.Lock()

    # -- native keys ---------------------------------------------------------

    def _import(self, point: Point, d: int | None) -> int:
        """A new ``EVP_PKEY`` from the point and, for a private key, the scalar."""
        lib = self._lib
        pub = point_to_bytes(point, _SIZE)
        # The buffers must outlive EVP_PKEY_fromdata, which copies them.
        group = ctypes.create_string_buffer(_GROUP, len(_GROUP))
        point_buffer = ctypes.create_string_buffer(pub, len(pub))
        params = [
            _Param(b"group", _PARAM_UTF8_STRING, ctypes.cast(group, _vp), len(_GROUP), 0),
            _Param(b"pub", _PARAM_OCTET_STRING, ctypes.cast(point_buffer, _vp), len(pub), 0),
        ]
        scalar = None
        if d is not None:
            # An unsigned integer parameter is in the machine's byte order.
            scalar = ctypes.create_string_buffer(d.to_bytes(_SIZE, sys.byteorder), _SIZE)
            params.append(_Param(b"priv", _PARAM_UNSIGNED_INTEGER, ctypes.cast(scalar, _vp), _SIZE, 0))
        params.append(_PARAMS_END)
        array = (_Param * len(params))(*params)
        ctx = lib.EVP_PKEY_CTX_new_from_name(None, _GROUP, None)
        if not ctx:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL has no SM2 key management")
        try:
            out = _vp()
            selection = _SELECT_PUBLIC_KEY if d is None else _SELECT_KEYPAIR
            ok = (
                lib.EVP_PKEY_fromdata_init(ctx) == 1
                and lib.EVP_PKEY_fromdata(ctx, ctypes.byref(out), selection, array) == 1
            )
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
            if scalar is not None:
                ctypes.memset(scalar, 0, _SIZE)  # OpenSSL keeps its own copy
        if not ok or not out.value:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not import the SM2 key")
        if lib.EVP_PKEY_is_a(out, _GROUP) != 1:
            lib.EVP_PKEY_free(out)
            raise CryptoError("OpenSSL did not import the key as an SM2 key")
        return int(out.value)

    def _native(self, owner: PublicHandle | PrivateHandle, point: Point, d: int | None) -> int:
        ptr = owner.native.get(_NAME)
        if ptr is not None:
            return int(ptr)
        with self._lock:
            ptr = owner.native.get(_NAME)
            if ptr is None:
                ptr = self._import(point, d)
                owner.native[_NAME] = ptr
                weakref.finalize(owner, self._lib.EVP_PKEY_free, ptr)
        return int(ptr)

    def _public(self, key: PublicHandle) -> int:
        return self._native(key, key.point, None)

    def _private(self, key: PrivateHandle) -> int:
        return self._native(key, key.public.point, key.d)

    def _run(
        self,
        pkey: int,
        init: Callable[[int], int],
        op: Callable[..., int],
        data: bytes,
        out_size: int | None,
    ) -> tuple[int, bytes]:
        """Run a one-shot EVP_PKEY operation that writes into a buffer."""
        lib = self._lib
        ctx = lib.EVP_PKEY_CTX_new(pkey, None)
        if not ctx:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not create an SM2 context")
        try:
            if init(ctx) != 1:
                lib.ERR_clear_error()
                raise CryptoError("OpenSSL could not start the SM2 operation")
            size = ctypes.c_size_t(0)
            if out_size is None:
                if op(ctx, None, ctypes.byref(size), data, len(data)) != 1:
                    lib.ERR_clear_error()
                    return 0, b""
            else:
                size.value = out_size
            out = ctypes.create_string_buffer(size.value)
            rc = op(ctx, out, ctypes.byref(size), data, len(data))
            if rc != 1:
                lib.ERR_clear_error()
                return rc, b""
            return rc, out.raw[: size.value]
        finally:
            lib.EVP_PKEY_CTX_free(ctx)

    # -- Sm2Backend ----------------------------------------------------------

    def sign_digest(self, key: PrivateHandle, e: bytes) -> tuple[int, int]:
        rc, der = self._run(
            self._private(key),
            self._lib.EVP_PKEY_sign_init,
            self._lib.EVP_PKEY_sign,
            e,
            _MAX_SIGNATURE,
        )
        if rc != 1:
            raise CryptoError("OpenSSL SM2 signing failed")
        try:
            r, s = decode_flat_sequence(der, "ii")
        except DerError as exc:
            raise CryptoError("OpenSSL returned a malformed signature") from exc
        assert isinstance(r, int) and isinstance(s, int)
        return r, s

    def verify_digest(self, key: PublicHandle, e: bytes, r: int, s: int) -> bool:
        lib = self._lib
        sig = encode_flat_sequence([r, s])
        ctx = lib.EVP_PKEY_CTX_new(self._public(key), None)
        if not ctx:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not create an SM2 context")
        try:
            if lib.EVP_PKEY_verify_init(ctx) != 1:
                lib.ERR_clear_error()
                raise CryptoError("OpenSSL could not start SM2 verification")
            rc = lib.EVP_PKEY_verify(ctx, sig, len(sig), e, len(e))
            if rc != 1:
                lib.ERR_clear_error()
            return bool(rc == 1)
        finally:
            lib.EVP_PKEY_CTX_free(ctx)

    def encrypt(self, key: PublicHandle, message: bytes) -> tuple[Point, bytes, bytes]:
        rc, der = self._run(
            self._public(key),
            self._lib.EVP_PKEY_encrypt_init,
            self._lib.EVP_PKEY_encrypt,
            message,
            None,
        )
        if rc != 1:
            raise CryptoError("OpenSSL SM2 encryption failed")
        try:
            x, y, c3, c2 = decode_flat_sequence(der, "iioo")
        except DerError as exc:
            raise CryptoError("OpenSSL returned a malformed ciphertext") from exc
        assert isinstance(x, int) and isinstance(y, int)
        assert isinstance(c3, bytes) and isinstance(c2, bytes)
        return (x, y), c3, c2

    def decrypt(self, key: PrivateHandle, c1: Point, c3: bytes, c2: bytes) -> bytes:
        der = encode_flat_sequence([c1[0], c1[1], c3, c2])
        rc, message = self._run(
            self._private(key),
            self._lib.EVP_PKEY_decrypt_init,
            self._lib.EVP_PKEY_decrypt,
            der,
            None,
        )
        if rc != 1:
            raise DecryptionError("ciphertext check value C3 does not match")
        return message


def _self_test(backend: OpenSslBackend) -> None:
    vec = load_toml("sm2_selftest.toml")
    pure = PureBackend("pure", arithmetic())
    arith = pure.arith
    n = SM2_CURVE.n
    d = int(vec["d"], 16)
    point = arith.mul_base(d)
    assert point is not None
    public = PublicHandle(point)
    private = PrivateHandle(d, pow(1 + d, -1, n), public)
    z = z_digest(SM2_CURVE, point[0], point[1], load_toml("sm2.toml")["defaults"]["uid"].encode())
    e = sm3(z + vec["message"].encode())
    if not backend.verify_digest(public, e, int(vec["r"], 16), int(vec["s"], 16)):
        raise BackendUnavailableError("OpenSSL rejected the GB/T 32918.5 signature example")
    r, s = backend.sign_digest(private, e)
    if not verify_with(arith, point, int.from_bytes(e, "big"), r, s):
        raise BackendUnavailableError("OpenSSL produced a signature the reference code rejects")
    c1_raw = bytes.fromhex(vec["c1"])
    c1 = (int.from_bytes(c1_raw[1:33], "big"), int.from_bytes(c1_raw[33:], "big"))
    plain = backend.decrypt(private, c1, bytes.fromhex(vec["c3"]), bytes.fromhex(vec["c2"]))
    if plain != vec["plaintext"].encode():
        raise BackendUnavailableError("OpenSSL failed the GB/T 32918.5 decryption example")
    c1b, c3b, c2b = backend.encrypt(public, plain)
    if pure.decrypt(private, c1b, c3b, c2b) != plain:
        raise BackendUnavailableError("OpenSSL produced a ciphertext the reference code rejects")


def load_openssl_backend() -> OpenSslBackend:
    """Load libcrypto, bind the EVP functions and run the self-test."""
    lib = _load_library()
    try:
        _bind(lib)
    except AttributeError as exc:
        raise BackendUnavailableError(f"libcrypto lacks a required function: {exc}") from exc
    backend = OpenSslBackend(lib)
    try:
        _self_test(backend)
    except CryptoError as exc:
        if isinstance(exc, BackendUnavailableError):
            raise
        raise BackendUnavailableError(f"OpenSSL SM2 self-test failed: {exc.message}") from exc
    return backend
