"""SM4 and 3DES keys: standard vectors, modes, MACs and error handling.

Expected MAC and CBC values are computed here with raw ``cryptography``
cipher calls, independently of sm_crypto's persistent-context engine.
"""

from __future__ import annotations

import os
import threading

import pytest
from crypto_vectors import h, load_vectors
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.errors import (
    InvalidBlockLengthError,
    InvalidKeyError,
    InvalidParameterError,
    PaddingError,
)
from sm_crypto.padding import Padding

SM4 = load_vectors("sm4.toml")


# -- independent reference computations ------------------------------------------


def ref_ecb(algorithm: algorithms.SM4 | TripleDES, data: bytes) -> bytes:
    return Cipher(algorithm, modes.ECB()).encryptor().update(data)


def ref_cbc(algorithm: algorithms.SM4 | TripleDES, iv: bytes, data: bytes) -> bytes:
    return Cipher(algorithm, modes.CBC(iv)).encryptor().update(data)


def m2(data: bytes, block: int) -> bytes:
    data += b"\x80"
    while len(data) % block:
        data += b"\x00"
    return data


def tdes(key: bytes) -> TripleDES:
    return TripleDES(key if len(key) == 24 else key + key[:8])


def ref_retail_mac(key: bytes, data: bytes, iv: bytes) -> bytes:
    """ISO 9797-1 algorithm 3 spelled out block by block with single DES."""
    k1 = TripleDES(key[:8] * 3)
    k2 = TripleDES(key[8:16] * 3)
    k3 = TripleDES((key[16:24] if len(key) == 24 else key[:8]) * 3)
    chain = iv
    for i in range(0, len(data := m2(data, 8)), 8):
        block = bytes(a ^ b for a, b in zip(chain, data[i : i + 8], strict=True))
        chain = ref_ecb(k1, block)
    chain = Cipher(k2, modes.ECB()).decryptor().update(chain)
    return ref_ecb(k3, chain)


# -- SM4 standard vectors -----------------------------------------------------------


def test_sm4_gbt32907_example() -> None:
    v = SM4["single"]
    key = Sm4Key(h(v["key"]))
    assert key.encrypt_ecb(h(v["plaintext"])) == h(v["ciphertext"])
    assert key.decrypt_ecb(h(v["ciphertext"])) == h(v["plaintext"])


def test_sm4_million_iterations() -> None:
    v = SM4["iterated"]
    key = Sm4Key(h(v["key"]))
    block = h(v["plaintext"])
    for _ in range(v["iterations"]):
        block = key.encrypt_ecb(block)
    assert block == h(v["ciphertext"])


# -- modes against raw cryptography ----------------------------------------------------


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 6),
)
def test_sm4_cbc_matches_reference(key_bytes: bytes, iv: bytes, blocks: int) -> None:
    data = os.urandom(16 * blocks)
    key = Sm4Key(key_bytes)
    expected = ref_cbc(algorithms.SM4(key_bytes), iv, data) if data else b""
    assert key.encrypt_cbc(data, iv) == expected
    assert key.decrypt_cbc(expected, iv) == data


def test_interleaved_calls_keep_chains_independent() -> None:
    raw = os.urandom(16)
    key = Sm4Key(raw)
    for _ in range(20):
        iv = os.urandom(16)
        data = os.urandom(16 * (1 + os.urandom(1)[0] % 5))
        ct = key.encrypt_cbc(data, iv)
        assert ct == ref_cbc(algorithms.SM4(raw), iv, data)
        key.mac(os.urandom(7))
        assert key.decrypt_cbc(ct, iv) == data


@given(st.binary(max_size=70), st.sampled_from(list(Padding)))
def test_sm4_padding_round_trips(data: bytes, padding: Padding) -> None:
    key = Sm4Key(bytes(range(16)))
    iv = bytes(16)
    if padding is Padding.NONE:
        data = data[: len(data) - len(data) % 16]
    assert key.decrypt_ecb(key.encrypt_ecb(data, padding), padding) == data
    assert key.decrypt_cbc(key.encrypt_cbc(data, iv, padding), iv, padding) == data


@given(st.binary(max_size=40), st.sampled_from([16, 24]))
def test_tdes_round_trips_and_reference(data: bytes, key_len: int) -> None:
    raw = bytes(range(1, key_len + 1))
    key = TdesKey(raw)
    iv = bytes(range(8))
    ct = key.encrypt_cbc(data, iv, Padding.PKCS7)
    padded_len = len(data) + 8 - len(data) % 8
    assert len(ct) == padded_len
    assert ct == ref_cbc(tdes(raw), iv, data + bytes([padded_len - len(data)]) * (padded_len - len(data)))
    assert key.decrypt_cbc(ct, iv, Padding.PKCS7) == data


def test_wrong_padding_detected_on_decrypt() -> None:
    key = Sm4Key(bytes(16))
    ct = key.encrypt_ecb(b"payload", Padding.ISO9797_M2)
    with pytest.raises(PaddingError):
        key.decrypt_ecb(ct, Padding.PKCS7)


# -- MACs ---------------------------------------------------------------------------


@given(
    st.binary(max_size=300),
    st.one_of(
        st.none(),
        st.binary(min_size=4, max_size=4),
        st.binary(min_size=8, max_size=8),
        st.binary(min_size=16, max_size=16),
    ),
    st.integers(1, 16),
)
def test_sm4_mac_matches_reference(data: bytes, iv: bytes | None, length: int) -> None:
    raw = bytes(range(100, 116))
    full_iv = bytes(16) if iv is None else iv.ljust(16, b"\x00")
    expected = ref_cbc(algorithms.SM4(raw), full_iv, m2(data, 16))[-16:][:length]
    assert Sm4Key(raw).mac(data, iv, length) == expected


def test_sm4_mac_known_answer() -> None:
    # Challenge-based MAC as a card computes it for an APDU with secure messaging.
    raw = h("0123456789ABCDEFFEDCBA9876543210")
    challenge = h("1122334455667788")
    apdu = h("04D6810008") + h("00112233")
    block1 = bytes(a ^ b for a, b in zip(challenge + bytes(8), m2(apdu, 16), strict=True))
    expected = ref_ecb(algorithms.SM4(raw), block1)[:4]
    assert Sm4Key(raw).mac(apdu, challenge) == expected
    assert Sm4Key(raw).verify_mac(apdu, expected, challenge)
    assert not Sm4Key(raw).verify_mac(apdu, bytes(4), challenge)


@given(st.binary(max_size=100), st.sampled_from([16, 24]), st.integers(1, 8))
def test_tdes_full_mac_matches_reference(data: bytes, key_len: int, length: int) -> None:
    raw = bytes(range(40, 40 + key_len))
    iv = bytes(range(8))
    expected = ref_cbc(tdes(raw), iv, m2(data, 8))[-8:][:length]
    assert TdesKey(raw).mac(data, iv, length) == expected


@given(
    st.binary(max_size=100),
    st.sampled_from([16, 24]),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4), st.binary(min_size=8, max_size=8)),
)
def test_tdes_retail_mac_matches_reference(data: bytes, key_len: int, iv: bytes | None) -> None:
    raw = bytes(range(7, 7 + key_len))
    expected = ref_retail_mac(raw, data, (iv or b"").ljust(8, b"\x00"))[:4]
    key = TdesKey(raw)
    assert key.retail_mac(data, iv) == expected
    assert key.verify_retail_mac(data, expected, iv)


def test_four_byte_challenge_is_zero_padded() -> None:
    challenge = bytes.fromhex("A1B2C3D4")
    sm4, tdes_key = Sm4Key(bytes(range(16))), TdesKey(bytes(range(16)))
    assert sm4.mac(b"apdu", challenge) == sm4.mac(b"apdu", challenge + bytes(12))
    assert tdes_key.mac(b"apdu", challenge) == tdes_key.mac(b"apdu", challenge + bytes(4))
    assert tdes_key.retail_mac(b"apdu", challenge) == tdes_key.retail_mac(b"apdu", challenge + bytes(4))


def test_retail_mac_differs_from_full_mac() -> None:
    key = TdesKey(bytes(range(16)))
    data = bytes(20)
    assert key.retail_mac(data) != key.mac(data)


def test_two_key_tdes_equals_k1k2k1() -> None:
    raw = os.urandom(16)
    data = os.urandom(24)
    assert TdesKey(raw).encrypt_ecb(data) == TdesKey(raw + raw[:8]).encrypt_ecb(data)


def test_mac_is_thread_safe() -> None:
    key = Sm4Key(os.urandom(16))
    messages = [os.urandom(i % 50) for i in range(200)]
    expected = [key.mac(m) for m in messages]
    results: list[list[bytes]] = [[] for _ in range(4)]

    def worker(slot: int) -> None:
        results[slot] = [key.mac(m) for m in messages]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def test_check_value() -> None:
    raw = os.urandom(16)
    assert Sm4Key(raw).check_value() == ref_ecb(algorithms.SM4(raw), bytes(16))[:3]


# -- errors and secrecy ----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 8, 15, 17, 32])
def test_sm4_rejects_bad_key_length(length: int) -> None:
    with pytest.raises(InvalidKeyError):
        Sm4Key(bytes(length))


@pytest.mark.parametrize("length", [0, 8, 15, 23, 32])
def test_tdes_rejects_bad_key_length(length: int) -> None:
    with pytest.raises(InvalidKeyError):
        TdesKey(bytes(length))


def test_rejects_non_bytes_key() -> None:
    with pytest.raises(TypeError):
        Sm4Key("0123456789abcdef")  # type: ignore[arg-type]


def test_rejects_partial_blocks() -> None:
    key = Sm4Key(bytes(16))
    with pytest.raises(InvalidBlockLengthError):
        key.encrypt_ecb(bytes(15))
    with pytest.raises(InvalidBlockLengthError):
        key.decrypt_ecb(bytes(17))
    with pytest.raises(InvalidBlockLengthError):
        key.decrypt_cbc(bytes(15), bytes(16))


@pytest.mark.parametrize("iv_len", [0, 8, 15, 17])
def test_cbc_rejects_bad_iv(iv_len: int) -> None:
    key = Sm4Key(bytes(16))
    with pytest.raises(InvalidBlockLengthError):
        key.encrypt_cbc(bytes(16), bytes(iv_len))
    with pytest.raises(InvalidBlockLengthError):
        key.decrypt_cbc(bytes(16), bytes(iv_len))


@pytest.mark.parametrize("iv_len", [1, 7, 9, 15, 17])
def test_mac_rejects_bad_iv(iv_len: int) -> None:
    with pytest.raises(InvalidBlockLengthError):
        Sm4Key(bytes(16)).mac(b"x", bytes(iv_len))
    with pytest.raises(InvalidBlockLengthError):
        TdesKey(bytes(16)).mac(b"x", bytes(iv_len + 8))


def test_tdes_mac_rejects_16_byte_iv() -> None:
    with pytest.raises(InvalidBlockLengthError):
        TdesKey(bytes(16)).retail_mac(b"x", bytes(16))


@pytest.mark.parametrize("length", [0, -1, 17])
def test_mac_rejects_bad_length(length: int) -> None:
    with pytest.raises(InvalidParameterError):
        Sm4Key(bytes(16)).mac(b"x", length=length)
    with pytest.raises(InvalidParameterError):
        TdesKey(bytes(16)).retail_mac(b"x", length=max(length, 9) if length > 0 else length)


def test_repr_hides_key_bytes() -> None:
    raw = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
    for key in (Sm4Key(raw), TdesKey(raw)):
        text = repr(key)
        assert raw.hex() not in text.lower()
        assert "a1b2" not in text.lower()
        assert "128-bit" in text


def test_keys_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Sm4Key(bytes(16)))
