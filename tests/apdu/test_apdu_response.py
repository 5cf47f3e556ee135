"""Response APDUs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import FileNotFound, PinError, ProtocolError, RecordNotFound
from apdu.response import ResponseApdu


def test_decode() -> None:
    r = ResponseApdu.decode(bytes.fromhex("0304332E30309000"))
    assert r.data == bytes.fromhex("0304332E3030") and r.sw == 0x9000
    assert r.sw1 == 0x90 and r.sw2 == 0x00 and r.ok


@pytest.mark.parametrize("raw", [b"", b"\x90"])
def test_too_short(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="status word"):
        ResponseApdu.decode(raw)


def test_check() -> None:
    ResponseApdu(b"", 0x9000).check()
    with pytest.raises(FileNotFound):
        ResponseApdu(b"", 0x6A82).check()
    with pytest.raises(PinError) as info:
        ResponseApdu(b"", 0x63C2).check("pin")
    assert info.value.retries_left == 2
    resp = ResponseApdu(b"\x6f\x00", 0x6283)
    assert resp.check(accept={0x6283}) is resp
    with pytest.raises(RecordNotFound):
        ResponseApdu(b"", 0x6A83).check(accept={0x6283})


def test_not_ok_for_warnings() -> None:
    assert not ResponseApdu(b"", 0x6282).ok


def test_repr_never_shows_data() -> None:
    text = repr(ResponseApdu(b"110102197305211008", 0x9000))
    assert "1101" not in text and "18 bytes" in text and "9000" in text


@pytest.mark.parametrize("sw", [-1, 0x10000, True])
def test_bad_sw(sw: int) -> None:
    with pytest.raises(ProtocolError):
        ResponseApdu(b"", sw)


def test_describe() -> None:
    assert ResponseApdu(b"", 0x6A82).describe() == ("file not found", "未找到文件")


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_round_trip(data: bytes, sw: int) -> None:
    r = ResponseApdu(data, sw)
    assert ResponseApdu.decode(r.encode()) == r
    assert bytes(r) == data + sw.to_bytes(2, "big")
