"""Exception hierarchy, Chinese texts, and secrets kept out of messages."""

from __future__ import annotations

import pytest

from sm_crypto import errors
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.errors import ChainError, CryptoError, InvalidKeyError
from sm_crypto.sm2 import Sm2PrivateKey

ALL = [
    errors.InvalidKeyError,
    errors.InvalidBlockLengthError,
    errors.PaddingError,
    errors.InvalidSignatureError,
    errors.InvalidPointError,
    errors.DecryptionError,
    errors.CertificateError,
    errors.InvalidParameterError,
    errors.BackendUnavailableError,
]


@pytest.mark.parametrize("cls", ALL)
def test_each_error_is_a_crypto_error_with_texts(cls: type[CryptoError]) -> None:
    err = cls("english text")
    assert isinstance(err, CryptoError)
    assert not isinstance(err, ValueError)
    assert err.message == "english text" == str(err)
    assert err.message_zh and err.message_zh != CryptoError("x").message_zh
    assert err.error_id != "crypto_error"


def test_error_ids_are_unique() -> None:
    ids = [cls.error_id for cls in ALL] + [ChainError.error_id, CryptoError.error_id]
    assert len(ids) == len(set(ids))


def test_chain_error_carries_reason() -> None:
    err = ChainError("expired", reason="expired")
    assert err.reason == "expired"
    assert err.message_zh == "证书链验证失败"


def test_key_errors_do_not_echo_key_material() -> None:
    secret = bytes.fromhex("DEADBEEFCAFEBABE0011223344556677AA")
    for factory in (Sm4Key, TdesKey):
        with pytest.raises(InvalidKeyError) as info:
            factory(secret)
        assert "deadbeef" not in str(info.value).lower()
    with pytest.raises(InvalidKeyError) as info:
        Sm2PrivateKey.from_bytes(secret)
    assert "deadbeef" not in str(info.value).lower()
