"""Command APDUs: cases 1-4, short and extended, strict decoding, repr."""

from __future__ import annotations

import pytest
from apdu_strategies import command_apdus
from hypothesis import given

from apdu.command import CommandApdu
from apdu.errors import ProtocolError

SSSE = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")


@pytest.mark.parametrize(
    ("cmd", "hex_", "case"),
    [
        (CommandApdu(0x00, 0xA4, 0x00, 0x00), "00A40000", 1),
        (CommandApdu(0x00, 0x84, 0x00, 0x00, le=4), "0084000004", 2),
        (CommandApdu(0x00, 0xB2, 0x03, 0x04, le=256), "00B2030400", 2),
        (CommandApdu(0x00, 0xB2, 0x03, 0x04, le=0), "00B2030400", 2),
        (
            CommandApdu(0x00, 0xA4, 0x04, 0x00, SSSE),
            "00A404000F" + SSSE.hex().upper(),
            3,
        ),
        (
            CommandApdu(0x00, 0x88, 0x00, 0x01, bytes(16), le=256),
            "008800011000000000000000000000000000000000" + "00",
            4,
        ),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=257), "00B0000000" + "0101", 2),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536), "00B00000000000", 2),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=0, extended=True), "00B00000000000", 2),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=4, extended=True), "00B00000000004", 2),
        (
            CommandApdu(0x00, 0xD6, 0x00, 0x00, b"\x01\x02", extended=True),
            "00D60000000002" + "0102",
            3,
        ),
        (
            CommandApdu(0x00, 0xD6, 0x00, 0x00, b"\xaa", le=65536, extended=True),
            "00D6000000" + "0001AA0000",
            4,
        ),
    ],
)
def test_encode_vectors(cmd: CommandApdu, hex_: str, case: int) -> None:
    assert cmd.encode().hex().upper() == hex_.upper()
    assert cmd.case == case
    assert CommandApdu.decode(bytes.fromhex(hex_)) == cmd


def test_long_data_selects_extended() -> None:
    cmd = CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300))
    assert cmd.extended
    raw = cmd.encode()
    assert raw[4:7] == b"\x00\x01\x2c" and len(raw) == 7 + 300


def test_le_normalisation() -> None:
    assert CommandApdu(0, 0xB0, 0, 0, le=0).le == 256
    assert CommandApdu(0, 0xB0, 0, 0, le=0, extended=True).le == 65536


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 256},
        {"ins": -1},
        {"p1": 1.5},
        {"le": 65537},
        {"le": -3},
        {"le": True},
        {"data": "text"},
        {"data": bytes(65536)},
        {"data": bytes(256), "extended": False},
        {"le": 257, "extended": False},
        {"extended": "yes"},
    ],
)
def test_invalid_construction(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(ProtocolError):
        CommandApdu(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hex_",
    [
        "",
        "00A400",
        "00A4040002AA",  # Lc 2, one byte
        "00A4040001AABBCC",  # Lc 1, two extra bytes
        "00B0000000",  # 5 bytes is case 2 short; valid -> tested below
        "00B000000000",  # 6 bytes: extended marker with 1 byte
        "00D600000000",  # 6 bytes
        "00D60000000000AA",  # extended Lc 0
        "00D6000000000201",  # extended Lc 2, one data byte
        "00D600000000020102030405",  # extended Lc 2, three trailing bytes
    ],
)
def test_strict_decode(hex_: str) -> None:
    raw = bytes.fromhex(hex_)
    if hex_ == "00B0000000":
        assert CommandApdu.decode(raw).le == 256
        return
    with pytest.raises(ProtocolError):
        CommandApdu.decode(raw)


def test_bytearray_data_is_frozen_to_bytes() -> None:
    cmd = CommandApdu(0, 0xD6, 0, 0, bytearray(b"ab"))  # type: ignore[arg-type]
    assert isinstance(cmd.data, bytes)


def test_immutability() -> None:
    cmd = CommandApdu(0, 0xB0, 0, 0)
    with pytest.raises(AttributeError):
        cmd.ins = 1  # type: ignore[misc]


def test_repr_shows_public_data() -> None:
    text = repr(CommandApdu(0x00, 0xA4, 0x04, 0x00, SSSE, le=256))
    assert text == "CommandApdu(00 A4 04 00 Lc=15 data=73 78 31 2E 73 68 2E C9 E7 BB E1 B1 A3 D5 CF Le=256)"


@pytest.mark.parametrize(
    "cmd",
    [
        CommandApdu(0x00, 0x20, 0x00, 0x01, bytes.fromhex("123456")),
        CommandApdu(0x80, 0x5E, 0x01, 0x01, bytes.fromhex("123456FF654321")),
        CommandApdu(0x00, 0x82, 0x00, 0x03, bytes(16)),
        CommandApdu(0x80, 0xFA, 0x05, 0x00, bytes(20)),
        CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes.fromhex("123456"), sensitive=True),
    ],
)
def test_repr_redacts_secrets(cmd: CommandApdu) -> None:
    text = repr(cmd)
    assert f"**({len(cmd.data)} bytes)**" in text
    assert cmd.data.hex(" ").upper() not in text


def test_repr_hides_only_the_mac_of_sm_commands() -> None:
    cmd = CommandApdu(0x04, 0xD6, 0x8D, 0x00, bytes.fromhex("0102030405AABBCCDD"))
    assert repr(cmd) == "CommandApdu(04 D6 8D 00 Lc=9 data=01 02 03 04 05 **(4 bytes)**)"


def test_sensitive_does_not_affect_equality() -> None:
    a = CommandApdu(0, 0xD6, 0, 0, b"x")
    assert a == a.as_sensitive() and a.as_sensitive().sensitive


def test_variants() -> None:
    cmd = CommandApdu(0, 0xB2, 1, 0x2C, le=10)
    assert cmd.with_le(3).le == 3
    assert cmd.with_cla(0x0C).cla == 0x0C
    assert cmd.with_data(bytes(300)).extended
    assert bytes(cmd) == cmd.encode()


@given(command_apdus())
def test_round_trip(cmd: CommandApdu) -> None:
    assert CommandApdu.decode(cmd.encode()) == cmd


@given(command_apdus())
def test_encoding_length_is_consistent(cmd: CommandApdu) -> None:
    raw = cmd.encode()
    lc_len = (3 if cmd.extended else 1) if cmd.data else 0
    le_len = 0 if cmd.le is None else ((2 if cmd.data else 3) if cmd.extended else 1)
    assert len(raw) == 4 + lc_len + len(cmd.data) + le_len
