"""Key diversification and session keys (expected values via raw cipher calls)."""

from __future__ import annotations

import os

import pytest
from crypto_vectors import h
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.diversify import diversify, diversify_multi, session_key
from sm_crypto.errors import InvalidParameterError


def sm4_e(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update(block)


def tdes_e(key: bytes, block: bytes) -> bytes:
    return Cipher(TripleDES(key + key[:8] if len(key) == 16 else key), modes.ECB()).encryptor().update(block)


def inv(data: bytes) -> bytes:
    return bytes(0xFF - b for b in data)


MASTER = h("0123456789ABCDEFFEDCBA9876543210")
FACTOR = h("1100000012345678")  # e.g. region code + card serial


def test_sm4_diversify_known_answer() -> None:
    expected = sm4_e(MASTER, FACTOR + inv(FACTOR))
    assert diversify(Sm4Key(MASTER), FACTOR) == expected
    assert len(expected) == 16


def test_tdes_diversify_known_answer() -> None:
    expected = tdes_e(MASTER, FACTOR) + tdes_e(MASTER, inv(FACTOR))
    assert diversify(TdesKey(MASTER), FACTOR) == expected


def test_tdes_diversify_with_three_key_master() -> None:
    master = MASTER + h("0011223344556677")
    expected = tdes_e(master, FACTOR) + tdes_e(master, inv(FACTOR))
    assert diversify(TdesKey(master), FACTOR) == expected


@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=4))
def test_multi_level_sm4(factors: list[bytes]) -> None:
    key = MASTER
    for f in factors:
        key = sm4_e(key, f + inv(f))
    assert diversify_multi(Sm4Key(MASTER), factors) == key


def test_multi_level_tdes() -> None:
    factors = [h("0102030405060708"), h("A1A2A3A4A5A6A7A8")]
    key = MASTER
    for f in factors:
        key = tdes_e(key, f) + tdes_e(key, inv(f))
    assert diversify_multi(TdesKey(MASTER), factors) == key


def test_sm4_session_key() -> None:
    card_key = os.urandom(16)
    challenge = h("0102030405060708")
    counter = h("0001")
    expected = sm4_e(card_key, challenge + counter + bytes(6))
    assert session_key(Sm4Key(card_key), challenge, counter) == expected
    assert session_key(Sm4Key(card_key), challenge) == sm4_e(card_key, challenge + bytes(8))


def test_tdes_session_key_is_single_length() -> None:
    card_key = os.urandom(16)
    challenge = h("01020304")
    counter = h("0007")
    s = tdes_e(card_key, challenge + counter + bytes(2))
    derived = session_key(TdesKey(card_key), challenge, counter)
    assert derived == s + s
    # A doubled 8-byte key makes 3DES behave as single DES.
    assert TdesKey(derived).encrypt_ecb(bytes(8)) == tdes_e(s * 3, bytes(8))


@pytest.mark.parametrize("length", [0, 7, 9, 16])
def test_factor_length_checked(length: int) -> None:
    with pytest.raises(InvalidParameterError):
        diversify(Sm4Key(MASTER), bytes(length))
    with pytest.raises(InvalidParameterError):
        diversify_multi(TdesKey(MASTER), [FACTOR, bytes(length)])


def test_multi_requires_factors() -> None:
    with pytest.raises(InvalidParameterError):
        diversify_multi(Sm4Key(MASTER), [])
    with pytest.raises(InvalidParameterError):
        diversify_multi(Sm4Key(MASTER), FACTOR)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "challenge", "counter"),
    [
        (Sm4Key(MASTER), bytes(3), b""),
        (Sm4Key(MASTER), bytes(17), b""),
        (Sm4Key(MASTER), bytes(8), bytes(9)),
        (TdesKey(MASTER), bytes(9), b""),
        (TdesKey(MASTER), bytes(8), bytes(1)),
    ],
)
def test_session_key_lengths_checked(key: Sm4Key | TdesKey, challenge: bytes, counter: bytes) -> None:
    with pytest.raises(InvalidParameterError):
        session_key(key, challenge, counter)


def test_rejects_raw_bytes_as_key() -> None:
    with pytest.raises(TypeError):
        diversify(MASTER, FACTOR)  # type: ignore[arg-type]
