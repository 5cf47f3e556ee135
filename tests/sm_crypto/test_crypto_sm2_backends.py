"""The OpenSSL and pure-Python SM2 backends agree with each other."""

from __future__ import annotations

import ctypes
import itertools
import secrets

import pytest
from crypto_vectors import h, load_vectors

from sm_crypto import _openssl, sm2
from sm_crypto._ec import GMPY2_AVAILABLE
from sm_crypto._sm2_core import SM2_CURVE, arithmetic
from sm_crypto.errors import BackendUnavailableError
from sm_crypto.sm2 import CipherOrder, Sm2PrivateKey

V = load_vectors("sm2.toml")
ALL = ("openssl", "pure", "pure-int")


def test_this_machine_has_every_backend() -> None:
    # The project's machines ship OpenSSL 3 and gmpy2; the default is OpenSSL.
    assert sm2.available_backends() == ALL
    assert GMPY2_AVAILABLE
    assert sm2.backend_name() == "openssl"


def test_using_backend_restores_previous() -> None:
    before = sm2.backend_name()
    with sm2.using_backend("pure-int"):
        assert sm2.backend_name() == "pure-int"
    assert sm2.backend_name() == before


def test_unknown_backend_rejected() -> None:
    with pytest.raises(BackendUnavailableError):
        sm2.set_backend("hsm")


@pytest.mark.parametrize("name", ["pure", "pure-int"])
def test_same_nonce_same_signature(name: str) -> None:
    v = V["recommended_sign"]
    key = Sm2PrivateKey.from_int(int(v["d"], 16))
    with sm2.using_backend(name):
        signature = key.sign(b"message digest", k=int(v["k"], 16))
    assert signature == h(v["r"]) + h(v["s"])


def test_fixed_nonce_results_identical_across_backends() -> None:
    key = Sm2PrivateKey.generate()
    nonce = secrets.randbelow(SM2_CURVE.n - 1) + 1
    results = set()
    for name in ALL:
        with sm2.using_backend(name):
            results.add((key.sign(b"same", k=nonce), key.public_key().encrypt(b"same", k=nonce)))
    assert len(results) == 1


@pytest.mark.parametrize(("signer", "verifier"), list(itertools.product(ALL, ALL)))
def test_cross_verify(signer: str, verifier: str) -> None:
    key = Sm2PrivateKey.generate()
    for message in (b"", b"x", bytes(range(256))):
        with sm2.using_backend(signer):
            signature = key.sign(message)
        with sm2.using_backend(verifier):
            key.public_key().verify(signature, message)


@pytest.mark.parametrize(("encrypter", "decrypter"), list(itertools.product(ALL, ALL)))
def test_cross_decrypt(encrypter: str, decrypter: str) -> None:
    key = Sm2PrivateKey.generate()
    for order in CipherOrder:
        with sm2.using_backend(encrypter):
            ciphertext = key.public_key().encrypt(b"cross-backend", order)
        with sm2.using_backend(decrypter):
            assert key.decrypt(ciphertext, order) == b"cross-backend"


@pytest.mark.parametrize("d", [1, 2, 0xFF, 1 << 200, SM2_CURVE.n - 2])
def test_openssl_imports_edge_scalars(d: int) -> None:
    # OpenSSL gets the raw scalar (machine byte order) and point: a key whose
    # scalar has leading zero bytes, or is the largest allowed, signs and
    # decrypts as the reference code expects.
    key = Sm2PrivateKey.from_int(d)
    with sm2.using_backend("openssl"):
        signature = key.sign(b"edge")
        ciphertext = key.public_key().encrypt(b"edge")
        assert key.decrypt(ciphertext) == b"edge"
    with sm2.using_backend("pure"):
        key.public_key().verify(signature, b"edge")
        assert key.decrypt(ciphertext) == b"edge"


def test_arithmetic_variants_agree() -> None:
    fast, plain = arithmetic(True), arithmetic(False)
    point = fast.mul_base(secrets.randbelow(SM2_CURVE.n))
    assert point is not None
    for _ in range(10):
        k1 = secrets.randbelow(SM2_CURVE.n)
        k2 = secrets.randbelow(SM2_CURVE.n)
        assert fast.mul_base(k1) == plain.mul_base(k1)
        assert fast.mul(point, k1) == plain.mul(point, k1)
        assert fast.mul_add(k1, point, k2) == plain.mul_add(k1, point, k2)


@pytest.mark.parametrize("use_gmpy2", [True, False])
def test_arithmetic_edge_cases(use_gmpy2: bool) -> None:
    ar = arithmetic(use_gmpy2)
    n = SM2_CURVE.n
    g = (SM2_CURVE.gx, SM2_CURVE.gy)
    assert ar.mul_base(0) is None
    assert ar.mul_base(n) is None
    assert ar.mul_base(1) == g
    assert ar.mul(g, n) is None
    assert ar.mul(g, n - 1) == (g[0], SM2_CURVE.p - g[1])
    two_g = ar.mul_base(2)
    assert ar.add(g, g) == two_g
    assert ar.add(g, (g[0], SM2_CURVE.p - g[1])) is None
    assert ar.add(None, g) == g
    assert ar.mul_add(1, g, n - 1) is None  # G + (n-1)G
    assert ar.mul_add(3, g, 4) == ar.mul_base(7)
    for k in (2**255, 2**256 - 1, n - 2, (n - 1) // 2, 256, 255):
        assert ar.mul_base(k) == ar.mul(g, k)


def test_missing_library_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> ctypes.CDLL:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr("ctypes.CDLL", refuse)
    with pytest.raises(BackendUnavailableError):
        _openssl.load_openssl_backend()


def test_failed_self_test_disables_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_openssl.OpenSslBackend, "verify_digest", lambda *args: False)
    with pytest.raises(BackendUnavailableError):
        _openssl.load_openssl_backend()


def test_fallback_to_pure_when_openssl_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable() -> _openssl.OpenSslBackend:
        raise BackendUnavailableError("simulated")

    monkeypatch.setattr(sm2, "_backends", {})
    monkeypatch.setattr(sm2, "_openssl_failure", None)
    monkeypatch.setattr(sm2, "_current", None)
    monkeypatch.setattr(_openssl, "load_openssl_backend", unavailable)
    assert sm2.available_backends() == ("pure", "pure-int")
    assert sm2.backend_name() == "pure"
    with pytest.raises(BackendUnavailableError):
        sm2.set_backend("openssl")
    key = Sm2PrivateKey.generate()
    key.public_key().verify(key.sign(b"still works"), b"still works")


def test_copies_of_keys_never_share_a_freed_native_key() -> None:
    """A card image is deep-copied (clone_image) after its keys were used: the
    copy must not keep the original's OpenSSL key pointer, which is freed
    when the original is collected."""
    import copy
    import gc
    import pickle

    key = Sm2PrivateKey.generate()
    message = b"copied after use"
    signature = key.sign(message)
    with sm2.using_backend("openssl"):
        public = key.public_key()
        public.verify(signature, message)  # imports the native key
        copied = copy.deepcopy(public)
        shallow = copy.copy(public)
        restored = pickle.loads(pickle.dumps(public))
        assert copied._handle is public._handle and shallow._handle is public._handle
        assert restored._handle is not public._handle and restored._handle.native == {}
        del public, key
        gc.collect()
        for survivor in (copied, shallow, restored):
            survivor.verify(signature, message)
