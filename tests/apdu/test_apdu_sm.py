"""Secure messaging.  Expected MACs are computed here, independently, with raw
``cryptography`` SM4 / DES calls (never via sm_crypto or the code under test):
the MAC providers below are test doubles of a PSAM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apdu_fakes import ScriptedTransport
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apdu.command import CommandApdu
from apdu.errors import KeyLocked, ProtocolError, SecureMessagingError
from apdu.protocol import ApduProtocol
from apdu.response import ResponseApdu
from apdu.sm import (
    SecureChannel,
    iv_from_challenge,
    mac_input,
    strip_mac,
    verify_command_mac,
    verify_response_mac,
    wrap_command,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "sm.json").read_text(encoding="utf-8"))


# -- independent primitives ------------------------------------------------------


def pad_m2(data: bytes, block: int) -> bytes:
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % block)


def sm4_ecb(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def sm4_cbc_mac(key: bytes, iv: bytes, message: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return (enc.update(pad_m2(message, 16)) + enc.finalize())[-16:]


def des_ecb(key8: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def retail_mac(key16: bytes, iv: bytes, message: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 (single-DES CBC, 3DES output transform)."""
    k1, k2 = key16[:8], key16[8:]
    state = iv
    data = pad_m2(message, 8)
    for i in range(0, len(data), 8):
        state = des_ecb(k1, bytes(a ^ b for a, b in zip(state, data[i : i + 8], strict=True)))
    return des_ecb(k1, des_ecb(k2, state, decrypt=True))


class Sm4Mac:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.calls: list[tuple[bytes, bytes]] = []

    def mac(self, message: bytes, iv: bytes) -> bytes:
        self.calls.append((message, iv))
        return sm4_cbc_mac(self.key, iv, message)


class RetailMac:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def mac(self, message: bytes, iv: bytes) -> bytes:
        return retail_mac(self.key, iv, message)


# -- sanity of the independent primitives (published vectors) ----------------------


def test_sm4_reference_vector() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert sm4_ecb(key, key).hex() == "681edf34d206965e86b3e94f536e4246"


def test_des_reference_vector() -> None:
    assert des_ecb(bytes.fromhex("0123456789ABCDEF"), b"Now is t").hex() == "3fa40e8a984d4815"


# -- MAC input and wrapping ---------------------------------------------------------


def test_iv_from_challenge() -> None:
    assert iv_from_challenge(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04" + bytes(12)
    assert iv_from_challenge(b"\x01\x02\x03\x04", 8) == b"\x01\x02\x03\x04" + bytes(4)
    assert iv_from_challenge(bytes(16)) == bytes(16)
    for bad in (b"", bytes(17)):
        with pytest.raises(ProtocolError):
            iv_from_challenge(bad)
    with pytest.raises(ProtocolError):
        iv_from_challenge(b"1234", 12)


def test_mac_input_of_a_wrapped_command() -> None:
    cmd = CommandApdu(0x84, 0x5E, 0x00, 0x01, bytes.fromhex("123456") + bytes.fromhex("AABBCCDD"))
    assert mac_input(cmd) == bytes.fromhex("845E000107123456")
    with pytest.raises(ProtocolError, match="SM bit"):
        mac_input(CommandApdu(0x80, 0x5E, 0x00, 0x01, bytes(7)))
    with pytest.raises(ProtocolError, match="MAC"):
        mac_input(CommandApdu(0x84, 0x44, 0x00, 0x00, b"\x01"))


@pytest.mark.parametrize("vector", VECTORS["sm4"], ids=lambda v: v["name"])
def test_sm4_wrap_vectors(vector: dict[str, str]) -> None:
    key = bytes.fromhex(vector["key"])
    challenge = bytes.fromhex(vector["challenge"])
    plain = CommandApdu.decode(bytes.fromhex(vector["command"]))
    wrapped = wrap_command(plain, iv_from_challenge(challenge, 16), Sm4Mac(key))
    # independent computation of the expected command
    header = bytes([plain.cla | 0x04, plain.ins, plain.p1, plain.p2])
    lc = len(plain.data) + 4
    mac = sm4_cbc_mac(key, challenge.ljust(16, b"\x00"), header + bytes([lc]) + plain.data)[:4]
    expected = (
        header + bytes([lc]) + plain.data + mac + (b"" if plain.le is None else bytes([plain.le % 256]))
    )
    assert wrapped.encode() == expected
    assert wrapped.encode().hex().upper() == vector["wrapped"]


@pytest.mark.parametrize("vector", VECTORS["des3"], ids=lambda v: v["name"])
def test_retail_mac_wrap_vectors(vector: dict[str, str]) -> None:
    key = bytes.fromhex(vector["key"])
    challenge = bytes.fromhex(vector["challenge"])
    plain = CommandApdu.decode(bytes.fromhex(vector["command"]))
    wrapped = wrap_command(plain, iv_from_challenge(challenge, 8), RetailMac(key))
    header = bytes([plain.cla | 0x04, plain.ins, plain.p1, plain.p2])
    lc = len(plain.data) + 4
    mac = retail_mac(key, challenge.ljust(8, b"\x00"), header + bytes([lc]) + plain.data)[:4]
    assert wrapped.encode() == header + bytes([lc]) + plain.data + mac
    assert wrapped.encode().hex().upper() == vector["wrapped"]


def test_wrap_keeps_le_and_sets_cla_bit() -> None:
    provider = Sm4Mac(bytes(16))
    wrapped = wrap_command(CommandApdu(0x00, 0xB2, 0x01, 0x3C, le=256), bytes(16), provider)
    assert wrapped.cla == 0x04 and wrapped.le == 256 and len(wrapped.data) == 4
    assert provider.calls == [(bytes.fromhex("04B2013C04"), bytes(16))]


def test_wrap_with_encryption() -> None:
    key = bytes(range(16))

    def encrypt(data: bytes) -> bytes:
        return sm4_ecb(key, pad_m2(bytes([len(data)]) + data, 16))

    provider = Sm4Mac(key)
    plain = CommandApdu(0x80, 0xD4, 0x01, 0x03, bytes(16))
    wrapped = wrap_command(plain, bytes(16), provider, encrypt=encrypt)
    enc = encrypt(bytes(16))
    assert wrapped.data[:-4] == enc and len(enc) == 32
    assert provider.calls[0][0] == bytes.fromhex("84D4010324") + enc


def test_extended_mac_input() -> None:
    provider = Sm4Mac(bytes(16))
    wrapped = wrap_command(CommandApdu(0x00, 0xD6, 0x8D, 0x00, bytes(300)), bytes(16), provider)
    assert wrapped.extended
    assert provider.calls[0][0][:7] == bytes.fromhex("04D68D00000130")


def test_provider_returning_short_mac() -> None:
    class Short:
        def mac(self, message: bytes, iv: bytes) -> bytes:
            return b"\x01"

    with pytest.raises(ProtocolError, match="fewer than 4"):
        wrap_command(CommandApdu(0x80, 0x44, 0, 0), bytes(16), Short())


def test_card_side_verification() -> None:
    provider = Sm4Mac(bytes(range(16)))
    iv = iv_from_challenge(b"\x10\x20\x30\x40")
    wrapped = wrap_command(CommandApdu(0x80, 0x5E, 0x00, 0x81, bytes.fromhex("123456")), iv, provider)
    assert verify_command_mac(wrapped, iv, provider) == bytes.fromhex("123456")
    assert strip_mac(wrapped)[0] == bytes.fromhex("123456")
    tampered = CommandApdu(wrapped.cla, wrapped.ins, wrapped.p1, wrapped.p2, b"\x65" + wrapped.data[1:])
    with pytest.raises(SecureMessagingError) as info:
        verify_command_mac(tampered, iv, provider)
    assert info.value.sw == 0x6988
    with pytest.raises(SecureMessagingError):
        verify_command_mac(wrapped, iv_from_challenge(b"\x10\x20\x30\x41"), provider)


def test_response_mac() -> None:
    key = bytes(range(16))
    iv = bytes(16)
    payload = bytes.fromhex("0102030405")
    mac = sm4_cbc_mac(key, iv, payload)[:4]
    assert verify_response_mac(ResponseApdu(payload + mac, 0x9000), iv, Sm4Mac(key)) == payload
    mac_sw = sm4_cbc_mac(key, iv, payload + b"\x90\x00")[:4]
    assert (
        verify_response_mac(ResponseApdu(payload + mac_sw, 0x9000), iv, Sm4Mac(key), include_sw=True)
        == payload
    )
    with pytest.raises(SecureMessagingError) as info:
        verify_response_mac(ResponseApdu(payload + bytes(4), 0x9000), iv, Sm4Mac(key))
    assert info.value.sw is None and info.value.national_code == -15
    with pytest.raises(ProtocolError):
        verify_response_mac(ResponseApdu(b"\x01", 0x9000), iv, Sm4Mac(key))


def test_secure_channel_fetches_challenge_and_wraps() -> None:
    key = bytes.fromhex(VECTORS["sm4"][0]["key"])
    challenge = bytes.fromhex("A1B2C3D4")
    mac = sm4_cbc_mac(key, challenge + bytes(12), bytes.fromhex("8444000004"))[:4]
    t = ScriptedTransport([("0084000004", "A1B2C3D49000"), ("8444000004" + mac.hex(), "9000")])
    channel = SecureChannel(ApduProtocol(t), Sm4Mac(key))
    assert channel.send(CommandApdu(0x80, 0x44, 0x00, 0x00)).ok
    assert t.done() and t.transactions == 1


def test_secure_channel_maps_6983_to_key_locked() -> None:
    key = bytes(16)
    mac = sm4_cbc_mac(key, bytes(16), bytes.fromhex("8418000004"))[:4]
    t = ScriptedTransport([("0084000004", "000000009000"), ("8418000004" + mac.hex(), "6983")])
    with pytest.raises(KeyLocked):
        SecureChannel(ApduProtocol(t), Sm4Mac(key)).send(CommandApdu(0x80, 0x18, 0x00, 0x00))


def test_secure_channel_with_external_challenge_source_and_3des() -> None:
    key = bytes.fromhex(VECTORS["des3"][0]["key"])
    challenge = bytes.fromhex("0102030405060708")
    mac = retail_mac(key, challenge, bytes.fromhex("841E000104"))[:4]
    t = ScriptedTransport([("841E000104" + mac.hex(), "9000")])
    channel = SecureChannel(ApduProtocol(t), RetailMac(key), challenge=lambda: challenge, block_size=8)
    channel.send(CommandApdu(0x80, 0x1E, 0x00, 0x01))
    assert t.done()


def test_secure_channel_plain_and_bad_config() -> None:
    t = ScriptedTransport([("00B2012C00", "9000")])
    channel = SecureChannel(ApduProtocol(t), Sm4Mac(bytes(16)), challenge=lambda: bytes(4))
    assert channel.send_plain(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256)).ok
    with pytest.raises(ProtocolError, match="no encrypt"):
        channel.wrap(CommandApdu(0x80, 0xD4, 0, 0, b"x"), encrypt=True)
    with pytest.raises(ProtocolError):
        SecureChannel(ApduProtocol(t), Sm4Mac(bytes(16)), block_size=12)


def test_get_challenge_wrong_length_answer() -> None:
    t = ScriptedTransport([("0084000004", "01029000")])
    with pytest.raises(ProtocolError, match="GET CHALLENGE"):
        SecureChannel(ApduProtocol(t), Sm4Mac(bytes(16))).send(CommandApdu(0x80, 0x44, 0, 0))
