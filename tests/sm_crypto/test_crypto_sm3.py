"""SM3, HMAC-SM3 and the SM3 KDF."""

from __future__ import annotations

import hmac as std_hmac

import pytest
from crypto_vectors import h, load_vectors
from hypothesis import given
from hypothesis import strategies as st

from sm_crypto import sm3 as sm3_module
from sm_crypto.errors import InvalidParameterError
from sm_crypto.sm3 import hmac_sm3, new_sm3, sm3, sm3_kdf

HASH_VECTORS = load_vectors("sm3.toml")["hash"]


@pytest.mark.parametrize("vector", HASH_VECTORS, ids=[v["name"] for v in HASH_VECTORS])
def test_sm3_standard_vectors(vector: dict[str, str]) -> None:
    assert sm3(vector["message_ascii"].encode()) == h(vector["digest"])


def test_sm3_accepts_bytearray_and_memoryview() -> None:
    expected = h(HASH_VECTORS[0]["digest"])
    assert sm3(bytearray(b"abc")) == expected  # type: ignore[arg-type]
    assert sm3(memoryview(b"abc")) == expected  # type: ignore[arg-type]


def test_sm3_rejects_str() -> None:
    with pytest.raises(TypeError):
        sm3("abc")  # type: ignore[arg-type]


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_incremental_equals_one_shot(data: bytes, cut: int) -> None:
    ctx = new_sm3()
    ctx.update(data[:cut])
    ctx.update(data[cut:])
    assert ctx.finalize() == sm3(data)


def _reference_hmac(key: bytes, data: bytes) -> bytes:
    """RFC 2104 written out with the SM3 function (64-byte block)."""
    if len(key) > 64:
        key = sm3(key)
    key = key.ljust(64, b"\x00")
    inner = sm3(bytes(b ^ 0x36 for b in key) + data)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


@given(st.binary(max_size=100), st.binary(max_size=200))
def test_hmac_sm3_matches_rfc2104(key: bytes, data: bytes) -> None:
    assert hmac_sm3(key, data) == _reference_hmac(key, data)


def test_hmac_sm3_long_key_is_hashed() -> None:
    key = bytes(range(100))
    assert hmac_sm3(key, b"x") == hmac_sm3(sm3(key), b"x")
    assert std_hmac.compare_digest(hmac_sm3(b"k", b"m"), _reference_hmac(b"k", b"m"))


def test_kdf_definition() -> None:
    z = b"shared secret"
    expected = b"".join(sm3(z + i.to_bytes(4, "big")) for i in (1, 2, 3))
    assert sm3_kdf(z, 96) == expected
    assert sm3_kdf(z, 70) == expected[:70]
    assert sm3_kdf(z, 0) == b""


@given(
    st.binary(max_size=64),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=200),
)
def test_kdf_prefix_property(z: bytes, a: int, b: int) -> None:
    short, long = sorted((a, b))
    assert sm3_kdf(z, long)[:short] == sm3_kdf(z, short)
    assert len(sm3_kdf(z, long)) == long


def test_kdf_rejects_negative_length() -> None:
    with pytest.raises(InvalidParameterError):
        sm3_kdf(b"z", -1)


def test_kdf_rejects_oversized_length() -> None:
    with pytest.raises(InvalidParameterError):
        sm3_kdf(b"z", 32 * 0xFFFFFFFF + 1)


def test_kdf_rejects_non_int_length() -> None:
    with pytest.raises(TypeError):
        sm3_kdf(b"z", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sm3_kdf(b"z", True)


def test_digest_size_constant() -> None:
    assert sm3_module.SM3_DIGEST_SIZE == len(sm3(b""))
