"""Strict DER for the two flat structures on the SM2 hot path.

* ``SM2Signature ::= SEQUENCE { r INTEGER, s INTEGER }`` (GM/T 0009)
* ``SM2Cipher ::= SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING,
  ciphertext OCTET STRING }`` (GM/T 0009, the form OpenSSL reads and writes)

Only these flat sequences of non-negative INTEGERs and OCTET STRINGs are
handled; key and certificate structures use asn1crypto. Decoding is strict:
definite minimal lengths, minimal non-negative integers, no trailing bytes.
"""

from __future__ import annotations

__all__ = ["DerError", "decode_flat_sequence", "encode_flat_sequence", "read_tlv"]

_INTEGER = 0x02
_OCTET_STRING = 0x04
_SEQUENCE = 0x30


class DerError(Exception):
    """Internal: malformed DER; callers translate it into a CryptoError subclass."""


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _encode_length(len(content)) + content


def _encode_integer(value: int) -> bytes:
    if value < 0:
        raise DerError("negative integers are not used here")
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_flat_sequence(items: list[int | bytes]) -> bytes:
    """SEQUENCE of INTEGER (for int items) and OCTET STRING (for bytes items)."""
    body = b"".join(
        _encode_integer(item) if isinstance(item, int) else _tlv(_OCTET_STRING, item) for item in items
    )
    return _tlv(_SEQUENCE, body)


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Return (tag, content_start, content_end) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("non-minimal length")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated")
    return tag, pos, end


def decode_flat_sequence(data: bytes, kinds: str) -> list[int | bytes]:
    """Decode a SEQUENCE whose items follow ``kinds`` ("i" INTEGER, "o" OCTET STRING)."""
    tag, start, end = read_tlv(data, 0)
    if tag != _SEQUENCE or end != len(data):
        raise DerError("not a single SEQUENCE")
    out: list[int | bytes] = []
    pos = start
    for kind in kinds:
        tag, cstart, cend = read_tlv(data, pos)
        content = data[cstart:cend]
        if kind == "i":
            if tag != _INTEGER or not content:
                raise DerError("INTEGER expected")
            if content[0] & 0x80:
                raise DerError("negative INTEGER")
            if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
                raise DerError("non-minimal INTEGER")
            out.append(int.from_bytes(content, "big"))
        else:
            if tag != _OCTET_STRING:
                raise DerError("OCTET STRING expected")
            out.append(bytes(content))
        pos = cend
    if pos != end:
        raise DerError("trailing items")
    return out
