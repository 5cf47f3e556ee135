"""BER-TLV (ISO/IEC 7816-4 §5.2 / X.690 subset) and the social security
cards' simple ``tag(1) | len(1) | value`` records.

Tags are ints of their encoded bytes (``0x9F08``, ``0x5F20``, ``0x6F``).
Lengths use the short form or the long forms ``81``..``84``; the indefinite
form ``80`` is not allowed in ISO 7816.  Every malformed input raises
:class:`~apdu.errors.ProtocolError` naming the problem and its offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from apdu.errors import ProtocolError

__all__ = [
    "MAX_DEPTH",
    "Tlv",
    "decode_length",
    "decode_tag",
    "encode",
    "encode_length",
    "encode_record",
    "encode_records",
    "encode_tag",
    "parse",
    "parse_one",
    "parse_record",
    "parse_records",
    "tag_is_constructed",
]

MAX_DEPTH = 16
MAX_TAG_BYTES = 4
MAX_LENGTH_BYTES = 4


def _tag_bytes(tag: int) -> bytes:
    if isinstance(tag, bool) or not isinstance(tag, int) or not 0 < tag < 1 << (8 * MAX_TAG_BYTES):
        raise ProtocolError(f"TLV: tag must be a positive int of at most {MAX_TAG_BYTES} bytes, got {tag!r}")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def tag_is_constructed(tag: int) -> bool:
    return bool(_tag_bytes(tag)[0] & 0x20)


def _validate_tag_bytes(raw: bytes, where: str) -> None:
    first = raw[0]
    if first in (0x00, 0xFF):
        raise ProtocolError(f"TLV{where}: tag byte {first:02X} is invalid")
    if (first & 0x1F) != 0x1F:
        if len(raw) != 1:
            raise ProtocolError(
                f"TLV{where}: tag {raw.hex().upper()} has subsequent bytes after a one-byte tag"
            )
        return
    if len(raw) < 2:
        raise ProtocolError(f"TLV{where}: tag {raw.hex().upper()} is truncated")
    if raw[1] == 0x80:
        raise ProtocolError(f"TLV{where}: tag {raw.hex().upper()} is not minimally encoded")
    for b in raw[1:-1]:
        if not b & 0x80:
            raise ProtocolError(f"TLV{where}: tag {raw.hex().upper()} ends before its last byte")
    if raw[-1] & 0x80:
        raise ProtocolError(f"TLV{where}: tag {raw.hex().upper()} is truncated")


def encode_tag(tag: int) -> bytes:
    raw = _tag_bytes(tag)
    _validate_tag_bytes(raw, "")
    return raw


def decode_tag(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Return ``(tag, next offset)``."""
    if offset >= len(data):
        raise ProtocolError(f"TLV: missing tag at offset {offset}")
    end = offset + 1
    if (data[offset] & 0x1F) == 0x1F:
        while True:
            if end >= len(data):
                raise ProtocolError(f"TLV: tag at offset {offset} is truncated")
            end += 1
            if end - offset > MAX_TAG_BYTES:
                raise ProtocolError(f"TLV: tag at offset {offset} is longer than {MAX_TAG_BYTES} bytes")
            if not data[end - 1] & 0x80:
                break
    raw = bytes(data[offset:end])
    _validate_tag_bytes(raw, f" at offset {offset}")
    return int.from_bytes(raw, "big"), end


def encode_length(n: int) -> bytes:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ProtocolError(f"TLV: length must be a non-negative int, got {n!r}")
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    if size > MAX_LENGTH_BYTES:
        raise ProtocolError(f"TLV: length {n} needs more than {MAX_LENGTH_BYTES} bytes")
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def decode_length(data: bytes, offset: int) -> tuple[int, int]:
    """Return ``(length, next offset)``."""
    if offset >= len(data):
        raise ProtocolError(f"TLV: missing length at offset {offset}")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first == 0x80:
        raise ProtocolError(f"TLV: indefinite length (80) at offset {offset} is not allowed")
    size = first & 0x7F
    if size > MAX_LENGTH_BYTES:
        raise ProtocolError(f"TLV: length field {first:02X} at offset {offset} is too long")
    if offset + 1 + size > len(data):
        raise ProtocolError(f"TLV: length at offset {offset} is truncated")
    return int.from_bytes(data[offset + 1 : offset + 1 + size], "big"), offset + 1 + size


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object.  A constructed object's ``value`` is the encoding of
    its ``children`` (give either; the other is derived)."""

    tag: int
    value: bytes = b""
    children: tuple[Tlv, ...] = field(default=())

    def __post_init__(self) -> None:
        encode_tag(self.tag)
        if not isinstance(self.value, bytes):
            if isinstance(self.value, (bytearray, memoryview)):
                object.__setattr__(self, "value", bytes(self.value))
            else:
                raise ProtocolError(f"TLV {self.tag:X}: value must be bytes")
        children = tuple(self.children)
        object.__setattr__(self, "children", children)
        if children:
            if not self.constructed:
                raise ProtocolError(f"TLV {self.tag:X}: a primitive tag cannot have children")
            if any(not isinstance(c, Tlv) for c in children):
                raise ProtocolError(f"TLV {self.tag:X}: children must be Tlv objects")
            joined = b"".join(c.encode() for c in children)
            if self.value and self.value != joined:
                raise ProtocolError(f"TLV {self.tag:X}: value and children disagree")
            object.__setattr__(self, "value", joined)
        elif self.constructed and self.value:
            object.__setattr__(
                self,
                "children",
                tuple(_parse(self.value, 0, len(self.value), 1, False)),
            )

    @property
    def constructed(self) -> bool:
        return tag_is_constructed(self.tag)

    def encode(self) -> bytes:
        return encode_tag(self.tag) + encode_length(len(self.value)) + self.value

    def __bytes__(self) -> bytes:
        return self.encode()

    def iter(self) -> Iterator[Tlv]:
        """Depth-first iteration over this object and all descendants."""
        yield self
        for child in self.children:
            yield from child.iter()

    def find(self, tag: int) -> Tlv | None:
        """First descendant (or self) with ``tag``."""
        return next((t for t in self.iter() if t.tag == tag), None)

    def find_all(self, tag: int) -> list[Tlv]:
        return [t for t in self.iter() if t.tag == tag]

    def __repr__(self) -> str:
        if self.children:
            return f"Tlv({self.tag:X}, [{', '.join(map(repr, self.children))}])"
        return f"Tlv({self.tag:X}, {self.value.hex().upper()})"


def _parse(data: bytes, start: int, end: int, depth: int, skip_padding: bool) -> list[Tlv]:
    if depth > MAX_DEPTH:
        raise ProtocolError(f"TLV: nesting deeper than {MAX_DEPTH} levels")
    out: list[Tlv] = []
    offset = start
    view = data[:end]
    while offset < end:
        if skip_padding and view[offset] in (0x00, 0xFF):
            offset += 1
            continue
        tag, offset = decode_tag(view, offset)
        length, offset = decode_length(view, offset)
        if offset + length > end:
            raise ProtocolError(
                f"TLV tag {tag:X}: length {length} exceeds the {end - offset} bytes remaining"
            )
        value = bytes(view[offset : offset + length])
        if tag_is_constructed(tag) and value:
            children = tuple(_parse(value, 0, len(value), depth + 1, skip_padding))
            out.append(_make(tag, value, children))
        else:
            out.append(_make(tag, value, ()))
        offset += length
    return out


def _make(tag: int, value: bytes, children: tuple[Tlv, ...]) -> Tlv:
    obj = object.__new__(Tlv)
    object.__setattr__(obj, "tag", tag)
    object.__setattr__(obj, "value", value)
    object.__setattr__(obj, "children", children)
    return obj


def parse(data: bytes, *, skip_padding: bool = False) -> list[Tlv]:
    """Parse a sequence of BER-TLV objects.  ``skip_padding``: accept ``00``
    / ``FF`` bytes between objects (ISO 7816-4 allows them)."""
    data = bytes(data)
    return _parse(data, 0, len(data), 1, skip_padding)


def parse_one(data: bytes) -> Tlv:
    """Parse exactly one object (trailing bytes are an error)."""
    data = bytes(data)
    if not data:
        raise ProtocolError("TLV: empty input, expected one object")
    objs = _parse(data, 0, len(data), 1, False)
    if len(objs) != 1:
        raise ProtocolError(f"TLV: expected one object, found {len(objs)} (trailing bytes)")
    return objs[0]


def encode(objects: Iterable[Tlv]) -> bytes:
    return b"".join(o.encode() for o in objects)


# -- social security simple records ------------------------------------------


def _check_record_tag(tag: int) -> None:
    if isinstance(tag, bool) or not isinstance(tag, int) or not 0x01 <= tag <= 0xFE:
        raise ProtocolError(f"record: tag must be 01..FE, got {tag!r}")


def parse_records(data: bytes) -> list[tuple[int, bytes]]:
    """Split concatenated ``tag | len | value`` records ("read all records")."""
    data = bytes(data)
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag = data[offset]
        if tag in (0x00, 0xFF):
            raise ProtocolError(f"record at offset {offset}: tag {tag:02X} is invalid")
        if offset + 1 >= len(data):
            raise ProtocolError(f"record {tag:02X} at offset {offset}: missing length byte")
        length = data[offset + 1]
        start = offset + 2
        if start + length > len(data):
            raise ProtocolError(
                f"record {tag:02X} at offset {offset}: length {length} exceeds the "
                f"{len(data) - start} bytes remaining"
            )
        out.append((tag, data[start : start + length]))
        offset = start + length
    return out


def parse_record(data: bytes, expected_tag: int | None = None) -> tuple[int, bytes]:
    """Parse exactly one record (as answered by READ RECORD of one record)."""
    records = parse_records(data)
    if len(records) != 1:
        raise ProtocolError(f"record: expected exactly one record, found {len(records)}")
    tag, value = records[0]
    if expected_tag is not None and tag != expected_tag:
        raise ProtocolError(f"record: expected tag {expected_tag:02X}, got {tag:02X}")
    return tag, value


def encode_record(tag: int, value: bytes) -> bytes:
    _check_record_tag(tag)
    value = bytes(value)
    if len(value) > 0xFF:
        raise ProtocolError(f"record {tag:02X}: value of {len(value)} bytes exceeds 255")
    return bytes((tag, len(value))) + value


def encode_records(records: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_record(t, v) for t, v in records)
