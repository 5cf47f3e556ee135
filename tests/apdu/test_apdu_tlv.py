"""BER-TLV and the simple social security records."""

from __future__ import annotations

import pytest
from apdu_strategies import tlvs
from hypothesis import given
from hypothesis import strategies as st

from apdu import tlv
from apdu.errors import ProtocolError
from apdu.tlv import Tlv

FCI = bytes.fromhex("6F17840F7378312E73682EC9E7BBE1B1A3D5CFA5049F080103")


def test_parse_fci() -> None:
    obj = tlv.parse_one(FCI)
    assert obj.tag == 0x6F and obj.constructed
    name = obj.find(0x84)
    assert name is not None
    assert name.value == bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
    gen = obj.find(0x9F08)
    assert gen is not None and gen.value == b"\x03" and not gen.constructed
    assert obj.encode() == FCI
    assert [t.tag for t in obj.iter()] == [0x6F, 0x84, 0xA5, 0x9F08]


def test_build_constructed() -> None:
    obj = Tlv(0x6F, children=(Tlv(0x84, b"ab"), Tlv(0xA5, children=(Tlv(0x9F08, b"\x03"),))))
    assert obj.encode() == bytes.fromhex("6F0A84026162A5049F080103")
    assert Tlv(0x6F, obj.value) == obj  # children derived from the value


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0xFF, "81FF"),
        (0x100, "820100"),
        (0x10000, "83010000"),
        (0x1000000, "8401000000"),
    ],
)
def test_lengths(n: int, encoded: str) -> None:
    assert tlv.encode_length(n).hex().upper() == encoded
    assert tlv.decode_length(bytes.fromhex(encoded), 0) == (n, len(encoded) // 2)


def test_non_minimal_long_length_is_accepted() -> None:
    assert tlv.parse(bytes.fromhex("5A8102AABB")) == [Tlv(0x5A, b"\xaa\xbb")]


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("", "empty"),
        ("5A", "missing length"),
        ("5A03AABB", "exceeds"),
        ("5A80", "indefinite"),
        ("5A85000000000001", "too long"),
        ("5A82AA", "truncated"),
        ("9F", "truncated"),
        ("9F8001", "not minimally"),
        ("9F818181818101", "longer than"),
        ("5A01AA5A", "missing length"),
        ("6F035A02AA", "exceeds"),
        ("00", "invalid"),
        ("5A01AA5B01BB", "trailing"),
    ],
)
def test_strict_errors(hex_: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        tlv.parse_one(bytes.fromhex(hex_))


def test_padding_is_skipped_only_on_request() -> None:
    data = bytes.fromhex("005A01AAFF5B01BB00")
    assert tlv.parse(data, skip_padding=True) == [
        Tlv(0x5A, b"\xaa"),
        Tlv(0x5B, b"\xbb"),
    ]
    with pytest.raises(ProtocolError):
        tlv.parse(data)


def test_nesting_depth_is_bounded() -> None:
    assert tlv.parse_one(bytes.fromhex("70035A01AA")).children == (Tlv(0x5A, b"\xaa"),)
    deep = bytes.fromhex("5A00")
    for _ in range(tlv.MAX_DEPTH + 2):
        deep = b"\x70" + tlv.encode_length(len(deep)) + deep
    with pytest.raises(ProtocolError, match="nesting"):
        tlv.parse_one(deep)


@pytest.mark.parametrize("tag", [0, -1, 0xFF, 0x1F, 0x9F80, 1 << 40, 0x5A5A])
def test_invalid_tags(tag: int) -> None:
    with pytest.raises(ProtocolError):
        Tlv(tag, b"")


def test_primitive_cannot_have_children() -> None:
    with pytest.raises(ProtocolError, match="primitive"):
        Tlv(0x5A, children=(Tlv(0x5A, b""),))


def test_value_children_disagreement() -> None:
    with pytest.raises(ProtocolError, match="disagree"):
        Tlv(0x70, b"\x5a\x00", children=(Tlv(0x5A, b"\x01"),))


def test_find_all() -> None:
    obj = tlv.parse_one(bytes.fromhex("70085A01AA5A01BB5B00"))
    assert [t.value for t in obj.find_all(0x5A)] == [b"\xaa", b"\xbb"]
    assert obj.find(0x99) is None


@given(st.lists(tlvs, max_size=5))
def test_round_trip(objects: list[Tlv]) -> None:
    encoded = tlv.encode(objects)
    assert tlv.parse(encoded) == objects
    assert tlv.encode(tlv.parse(encoded)) == encoded


@given(st.integers(0, 2**32 - 1))
def test_length_round_trip(n: int) -> None:
    enc = tlv.encode_length(n)
    assert tlv.decode_length(enc, 0) == (n, len(enc))


# -- simple records ------------------------------------------------------------


def test_parse_records_read_all() -> None:
    data = bytes.fromhex("0304332E3030" + "0201" + "33" + "0709" + "583030303030303139")
    assert tlv.parse_records(data) == [(3, b"3.00"), (2, b"3"), (7, b"X00000019")]


def test_parse_record_single() -> None:
    assert tlv.parse_record(bytes.fromhex("0304332E3030"), 3) == (3, b"3.00")
    with pytest.raises(ProtocolError, match="expected tag"):
        tlv.parse_record(bytes.fromhex("0304332E3030"), 4)
    with pytest.raises(ProtocolError, match="exactly one"):
        tlv.parse_record(bytes.fromhex("03003400"))


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("03", "missing length"),
        ("0305332E3030", "exceeds"),
        ("0000", "invalid"),
        ("FF00", "invalid"),
        ("030133" + "07", "missing length"),
    ],
)
def test_record_errors(hex_: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        tlv.parse_records(bytes.fromhex(hex_))


def test_encode_record() -> None:
    assert tlv.encode_record(3, b"3.00") == bytes.fromhex("0304332E3030")
    with pytest.raises(ProtocolError):
        tlv.encode_record(3, bytes(256))
    with pytest.raises(ProtocolError):
        tlv.encode_record(0, b"")


@given(st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=255)), max_size=8))
def test_records_round_trip(records: list[tuple[int, bytes]]) -> None:
    assert tlv.parse_records(tlv.encode_records(records)) == records
