"""Fuzz harness (hypothesis) over every sm_crypto entry point that takes untrusted bytes.

Each one either succeeds or raises its documented ``CryptoError`` subclass
(docs/crypto.md, "Exceptions"): never a bare ``ValueError`` / ``TypeError`` /
``IndexError`` from deep inside a backend, never garbage.  Inputs are random
bytes and valid encodings with one byte changed, cut short or extended.
Bounded: a few seconds per run; raise CRYPTO_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sm_crypto import sm2
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.ca import TestCa
from sm_crypto.envelope import open_private_key, seal_private_key
from sm_crypto.errors import (
    CertificateError,
    CryptoError,
    DecryptionError,
    InvalidBlockLengthError,
    InvalidKeyError,
    InvalidParameterError,
    InvalidPointError,
    InvalidSignatureError,
    PaddingError,
)
from sm_crypto.padding import Padding, unpad
from sm_crypto.sm2 import CipherOrder, Sm2PrivateKey, Sm2PublicKey, signature_from_der
from sm_crypto.x509 import Sm2Certificate, load_pem_certificates

EXAMPLES = int(os.environ.get("CRYPTO_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# "pure-int" is the "pure" code with Python ints (its arithmetic is proven equal in
# test_crypto_sm2_backends.py); fuzzing it again would only cost time.
BACKENDS = [name for name in sm2.available_backends() if name != "pure-int"]


@cache
def _material() -> dict[str, object]:
    key = Sm2PrivateKey.from_int(0x1649AB77A00637BD5E2EFE283FBF353534AA7F7CB89463F208DDBC2920BB0DA0)
    public = key.public_key()
    ca = TestCa({"CN": "fuzz root"})
    leaf = ca.issue_signature_certificate(public, {"CN": "fuzz card"})
    return {
        "key": key,
        "public": public,
        "message": b"fuzz message",
        "signature": key.sign(b"fuzz message"),
        "signature_der": key.sign_der(b"fuzz message"),
        "c1c3c2": public.encrypt(b"fuzz plaintext", CipherOrder.C1C3C2),
        "c1c2c3": public.encrypt(b"fuzz plaintext", CipherOrder.C1C2C3),
        "cipher_der": public.encrypt_der(b"fuzz plaintext"),
        "public_raw": public.to_bytes(),
        "public_compressed": public.to_bytes(compressed=True),
        "public_der": public.to_der(),
        "public_pem": public.to_pem(),
        "private_der": key.to_der(),
        "private_pem": key.to_pem(),
        "cert_der": leaf.der,
        "cert_pem": leaf.to_pem(),
        "envelope": seal_private_key(public, Sm2PrivateKey.generate()),
        "sm4_cbc_pkcs7": Sm4Key(bytes(range(16))).encrypt_cbc(b"fuzz", bytes(16), Padding.PKCS7),
    }


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    """A valid encoding ``name`` with one byte changed, cut short or extended, or random bytes."""
    op = draw(st.sampled_from(["random", "flip", "cut", "grow", "none"]))
    if op == "random":
        return draw(st.binary(max_size=300))
    data = bytearray(_material()[name])  # type: ignore[arg-type]
    if op == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    elif op == "cut":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif op == "grow":
        data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


REJECTED = object()


def _only(allowed: tuple[type[CryptoError], ...], call: Callable[[], object]) -> object:
    """Run ``call``: its result, or REJECTED for one of the ``allowed`` exceptions.

    Any other exception (another CryptoError included) propagates and fails the test."""
    try:
        return call()
    except allowed:
        return REJECTED


# -- keys and points ---------------------------------------------------------------------


@FUZZ
@given(st.one_of(mutated("public_raw"), mutated("public_compressed")))
def test_public_key_bytes(data: bytes) -> None:
    key = _only((InvalidPointError,), lambda: Sm2PublicKey.from_bytes(data))
    if key is not REJECTED:
        assert isinstance(key, Sm2PublicKey)
        assert Sm2PublicKey.from_bytes(key.to_bytes()) == key


@FUZZ
@given(st.one_of(mutated("public_der"), mutated("public_pem")))
def test_public_key_files(data: bytes) -> None:
    allowed = (InvalidKeyError, InvalidPointError)
    for parse in (Sm2PublicKey.from_der, Sm2PublicKey.from_pem):
        key = _only(allowed, lambda parse=parse: parse(data))  # type: ignore[misc]
        assert key is REJECTED or isinstance(key, Sm2PublicKey)


@FUZZ
@given(st.one_of(mutated("private_der"), mutated("private_pem"), st.binary(min_size=32, max_size=32)))
def test_private_key_files(data: bytes) -> None:
    for parse in (Sm2PrivateKey.from_der, Sm2PrivateKey.from_pem, Sm2PrivateKey.from_bytes):
        key = _only((InvalidKeyError,), lambda parse=parse: parse(data))  # type: ignore[misc]
        assert key is REJECTED or isinstance(key, Sm2PrivateKey)


# -- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(signature=mutated("signature"), der=mutated("signature_der"))
def test_signatures(backend: str, signature: bytes, der: bytes) -> None:
    m = _material()
    public: Sm2PublicKey = m["public"]  # type: ignore[assignment]
    message: bytes = m["message"]  # type: ignore[assignment]
    with sm2.using_backend(backend):
        # Only the signature made here verifies (a changed one never does) ...
        verified = _only((InvalidSignatureError,), lambda: public.verify(signature, message))
        assert (verified is not REJECTED) == (signature == m["signature"])
        verified = _only((InvalidSignatureError,), lambda: public.verify_der(der, message))
        # ... except a DER re-encoding of the same r, s (strict DER makes that impossible).
        assert (verified is not REJECTED) == (der == m["signature_der"])
    raw = _only((InvalidSignatureError,), lambda: signature_from_der(der))
    assert raw is REJECTED or (isinstance(raw, bytes) and len(raw) == 64)


# -- encryption ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(a=mutated("c1c3c2"), b=mutated("c1c2c3"), der=mutated("cipher_der"))
def test_ciphertexts(backend: str, a: bytes, b: bytes, der: bytes) -> None:
    m = _material()
    key: Sm2PrivateKey = m["key"]  # type: ignore[assignment]
    with sm2.using_backend(backend):
        cases = ((a, CipherOrder.C1C3C2, m["c1c3c2"]), (b, CipherOrder.C1C2C3, m["c1c2c3"]))
        for data, order, valid in cases:
            plain = _only((DecryptionError,), lambda data=data, order=order: key.decrypt(data, order))  # type: ignore[misc]
            # A changed ciphertext never decrypts to anything: C3 catches it.
            assert plain == (b"fuzz plaintext" if data == valid else REJECTED)
        plain = _only((DecryptionError,), lambda: key.decrypt_der(der))
        assert plain in (REJECTED, b"fuzz plaintext")


@FUZZ
@given(mutated("envelope"))
def test_envelopes(data: bytes) -> None:
    key: Sm2PrivateKey = _material()["key"]  # type: ignore[assignment]
    opened = _only((DecryptionError,), lambda: open_private_key(key, data))
    assert opened is REJECTED or (data == _material()["envelope"] and isinstance(opened, Sm2PrivateKey))


# -- certificates -------------------------------------------------------------------------


@FUZZ
@given(der=mutated("cert_der"), pem=mutated("cert_pem"))
def test_certificates(der: bytes, pem: bytes) -> None:
    cert = _only((CertificateError,), lambda: Sm2Certificate.from_der(der))
    assert cert is REJECTED or isinstance(cert, Sm2Certificate)
    certs = _only((CertificateError,), lambda: load_pem_certificates(pem))
    assert certs is REJECTED or all(isinstance(c, Sm2Certificate) for c in certs)  # type: ignore[attr-defined]
    cert = _only((CertificateError,), lambda: Sm2Certificate.from_pem(pem))
    assert cert is REJECTED or isinstance(cert, Sm2Certificate)


# -- padding and block ciphers ------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([8, 16]), st.sampled_from(list(Padding)))
def test_unpad(data: bytes, block_size: int, padding: Padding) -> None:
    out = _only((PaddingError, InvalidBlockLengthError), lambda: unpad(data, block_size, padding))
    assert out is REJECTED or (isinstance(out, bytes) and len(out) <= len(data))


@FUZZ
@given(mutated("sm4_cbc_pkcs7"), st.sampled_from(list(Padding)), st.binary(min_size=8, max_size=16))
def test_block_decryption(data: bytes, padding: Padding, iv: bytes) -> None:
    allowed = (PaddingError, InvalidBlockLengthError)
    sm4 = Sm4Key(bytes(range(16)))
    tdes = TdesKey(bytes(range(16)))
    for key in (sm4, tdes):
        out = _only(allowed, lambda key=key: key.decrypt_cbc(data, iv, padding))  # type: ignore[misc]
        assert out is REJECTED or isinstance(out, bytes)
        out = _only(allowed, lambda key=key: key.decrypt_ecb(data, padding))  # type: ignore[misc]
        assert out is REJECTED or isinstance(out, bytes)
        mac_ok = _only(  # an empty expected MAC is a bad MAC length
            (InvalidBlockLengthError, InvalidParameterError),
            lambda key=key: key.verify_mac(data, data[:4], iv),  # type: ignore[misc]
        )
        assert mac_ok is REJECTED or isinstance(mac_ok, bool)
