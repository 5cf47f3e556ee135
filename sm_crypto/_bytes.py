"""Small helpers for bytes-in / bytes-out APIs."""

from __future__ import annotations


def as_bytes(value: object, name: str) -> bytes:
    """Return ``value`` as immutable bytes; raise TypeError for non-bytes-like input."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """XOR two equally long byte strings."""
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")
