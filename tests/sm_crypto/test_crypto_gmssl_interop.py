"""Interop checks against gmssl 3.2.2 (used only here and in benchmarks).

gmssl is not used by sm_crypto; these tests show that both agree on valid
data and that sm_crypto rejects what gmssl wrongly accepts (issue 3 lists
gmssl's defects).
"""

from __future__ import annotations

import os

import pytest
from gmssl import sm2 as gm_sm2  # type: ignore[import-untyped]
from gmssl import sm4 as gm_sm4

from sm_crypto.block import Sm4Key
from sm_crypto.errors import DecryptionError
from sm_crypto.padding import Padding
from sm_crypto.sm2 import CipherOrder, Sm2PrivateKey
from terminal.bench.crypto import gmssl_key_pair


@pytest.fixture(scope="module")
def pair() -> tuple[Sm2PrivateKey, gm_sm2.CryptSM2]:
    key, gm = gmssl_key_pair(gm_sm2)
    return key, gm


def test_gmssl_signature_verifies_here(
    pair: tuple[Sm2PrivateKey, gm_sm2.CryptSM2],
) -> None:
    key, gm = pair
    message = b"signed by gmssl"
    signature = bytes.fromhex(gm.sign_with_sm3(message))
    key.public_key().verify(signature, message)


def test_our_signature_verifies_in_gmssl(
    pair: tuple[Sm2PrivateKey, gm_sm2.CryptSM2],
) -> None:
    key, gm = pair
    message = b"signed here"
    assert gm.verify_with_sm3(key.sign(message).hex(), message)


def test_encryption_both_ways(pair: tuple[Sm2PrivateKey, gm_sm2.CryptSM2]) -> None:
    key, gm = pair
    message = os.urandom(40)
    # gmssl leaves the 04 prefix off C1.
    assert key.decrypt(b"\x04" + gm.encrypt(message), CipherOrder.C1C3C2) == message
    assert gm.decrypt(key.public_key().encrypt(message)[1:]) == message


def test_we_reject_tampering_gmssl_misses(
    pair: tuple[Sm2PrivateKey, gm_sm2.CryptSM2],
) -> None:
    key, gm = pair
    ciphertext = bytearray(key.public_key().encrypt(b"amount=100"))
    ciphertext[-1] ^= 0x01  # last byte of C2
    # gmssl never checks C3 and returns an altered plaintext.
    assert gm.decrypt(bytes(ciphertext[1:])) != b"amount=100"
    with pytest.raises(DecryptionError):
        key.decrypt(bytes(ciphertext))


def test_sm4_agrees_with_gmssl() -> None:
    raw, iv, data = os.urandom(16), os.urandom(16), os.urandom(45)
    gm = gm_sm4.CryptSM4()
    gm.set_key(raw, gm_sm4.SM4_ENCRYPT)
    assert gm.crypt_cbc(iv, data) == Sm4Key(raw).encrypt_cbc(data, iv, Padding.PKCS7)
