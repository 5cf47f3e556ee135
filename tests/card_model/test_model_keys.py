"""Issuer key sets: demo derivation, diversification, TOML persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card_model.errors import KeySetError
from card_model.keys import DEMO_LABEL, Algorithm, IssuerKeySet, KeyRole, demo_key_set, role_for_kid
from sm_crypto.sm3 import sm3


def test_demo_key_set_is_the_documented_derivation() -> None:
    keys = demo_key_set()
    assert keys.demo
    for algorithm in Algorithm:
        for role in KeyRole:
            expected = sm3(f"{DEMO_LABEL}|{algorithm.value}|{role.value}".encode())[:16]
            assert keys.master_bytes(algorithm, role) == expected
    assert "demo" in repr(keys)
    assert keys.master_bytes(Algorithm.SM4, KeyRole.RK).hex() not in repr(keys).lower()


def test_sm4_card_key_matches_raw_sm4() -> None:
    keys = demo_key_set()
    factor = bytes.fromhex("E0CF52641D730D02")
    master = keys.master_bytes(Algorithm.SM4, KeyRole.RK)
    encryptor = Cipher(algorithms.SM4(master), modes.ECB()).encryptor()
    expected = encryptor.update(factor + bytes(b ^ 0xFF for b in factor)) + encryptor.finalize()
    assert keys.card_key(Algorithm.SM4, KeyRole.RK, factor) == expected


def test_roles() -> None:
    assert [role.kid for role in KeyRole] == list(range(1, 11))
    assert role_for_kid(3) is KeyRole.RK and role_for_kid(0x0B) is None
    assert KeyRole.RK.text == "读卡密钥（RKssse）"
    assert KeyRole.KTK.psam_usage == {"wrap"}


def test_toml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    demo_key_set().save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert IssuerKeySet.load(path) == demo_key_set()


@pytest.mark.parametrize(
    "text",
    [
        "format = 'x'\nversion = 1\n",
        "format = 'sscard-issuer-keys'\nversion = 2\n",
        "format = 'sscard-issuer-keys'\nversion = 1\n",
        "format = 'sscard-issuer-keys'\nversion = 1\n[sm4]\nIAK = '00'\n",
        "format = 'sscard-issuer-keys'\nversion = 1\n[sm4]\nXYZ = '" + "00" * 16 + "'\n",
        "format = 'sscard-issuer-keys'\nversion = 1\n[aes]\n",
        "format = 'sscard-issuer-keys'\nversion = 1\nsm4 = 3\n",
        "format = 'sscard-issuer-keys'\nversion = 1\ndemo = 'no'\n[sm4]\nIAK = '" + "00" * 16 + "'\n",
        "format = [",
    ],
)
def test_bad_key_set_files(text: str) -> None:
    with pytest.raises(KeySetError) as info:
        IssuerKeySet.from_toml(text)
    assert "00" * 16 not in str(info.value)


def test_missing_master_and_file() -> None:
    keys = IssuerKeySet({(Algorithm.SM4, KeyRole.IAK): bytes(16)})
    with pytest.raises(KeySetError):
        keys.master(Algorithm.TDES, KeyRole.IAK)
    with pytest.raises(KeySetError):
        IssuerKeySet.load("/nonexistent/keys.toml")
    with pytest.raises(KeySetError):
        IssuerKeySet({(Algorithm.SM4, KeyRole.IAK): bytes(8)})
