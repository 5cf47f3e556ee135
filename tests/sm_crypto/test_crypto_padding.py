"""Padding schemes: NONE, PKCS#7, ISO/IEC 9797-1 method 2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sm_crypto.errors import (
    InvalidBlockLengthError,
    InvalidParameterError,
    PaddingError,
)
from sm_crypto.padding import Padding, pad, unpad

BLOCK_SIZES = st.sampled_from([8, 16])


def test_iso9797_m2_examples() -> None:
    assert pad(b"\x01\x02\x03", 8, Padding.ISO9797_M2) == b"\x01\x02\x03\x80\x00\x00\x00\x00"
    assert pad(bytes(8), 8, Padding.ISO9797_M2) == bytes(8) + b"\x80" + bytes(7)
    assert pad(b"", 16, Padding.ISO9797_M2) == b"\x80" + bytes(15)


def test_pkcs7_examples() -> None:
    assert pad(b"abc", 8, Padding.PKCS7) == b"abc" + b"\x05" * 5
    assert pad(bytes(16), 16, Padding.PKCS7) == bytes(16) + b"\x10" * 16


def test_none_passes_whole_blocks() -> None:
    assert pad(bytes(16), 16, Padding.NONE) == bytes(16)
    assert unpad(bytes(16), 16, Padding.NONE) == bytes(16)
    assert pad(b"", 8, Padding.NONE) == b""


@given(
    st.binary(max_size=80),
    BLOCK_SIZES,
    st.sampled_from([Padding.PKCS7, Padding.ISO9797_M2]),
)
def test_round_trip(data: bytes, block_size: int, padding: Padding) -> None:
    padded = pad(data, block_size, padding)
    assert len(padded) % block_size == 0
    assert len(data) < len(padded) <= len(data) + block_size
    assert unpad(padded, block_size, padding) == data


@given(st.binary(min_size=1, max_size=40).filter(lambda b: len(b) % 8 != 0))
def test_none_rejects_partial_blocks(data: bytes) -> None:
    with pytest.raises(InvalidBlockLengthError):
        pad(data, 8, Padding.NONE)
    with pytest.raises(InvalidBlockLengthError):
        unpad(data, 8, Padding.NONE)


@pytest.mark.parametrize(
    "block",
    [
        bytes(8),  # count byte 0
        b"\x00" * 7 + b"\x09",  # count larger than the block
        b"\x01" * 5 + b"\x02\x03\x03",  # inconsistent bytes
        b"abcdefg\x02",
    ],
)
def test_pkcs7_rejects_malformed(block: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad(block, 8, Padding.PKCS7)


@pytest.mark.parametrize(
    "block",
    [
        bytes(8),  # no 80 marker at all
        b"abcdefgh",  # no padding
        b"abc\x80\x00\x00\x00\x01",  # junk after the marker
        b"abcdef\x81\x00",  # wrong marker
    ],
)
def test_iso9797_rejects_malformed(block: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad(block, 8, Padding.ISO9797_M2)


def test_iso9797_marker_only_searched_in_last_block() -> None:
    # 80 in the previous block is data, not padding: the last block has no marker.
    with pytest.raises(PaddingError):
        unpad(b"\x80" + bytes(15), 8, Padding.ISO9797_M2)


@pytest.mark.parametrize("padding", [Padding.PKCS7, Padding.ISO9797_M2])
def test_unpad_rejects_empty_and_partial(padding: Padding) -> None:
    with pytest.raises(InvalidBlockLengthError):
        unpad(b"", 8, padding)
    with pytest.raises(InvalidBlockLengthError):
        unpad(b"\x80" + bytes(6), 8, padding)


@pytest.mark.parametrize("block_size", [0, 4, 15, 32])
def test_rejects_unsupported_block_size(block_size: int) -> None:
    with pytest.raises(InvalidParameterError):
        pad(b"", block_size, Padding.PKCS7)
    with pytest.raises(InvalidParameterError):
        unpad(bytes(16), block_size, Padding.PKCS7)


def test_rejects_non_enum_padding() -> None:
    with pytest.raises(TypeError):
        pad(b"", 8, "pkcs7")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        unpad(bytes(8), 8, "pkcs7")  # type: ignore[arg-type]
