"""Run the stock vsmartcard ``VirtualICC`` (Debian's python3-virtualsmartcard) on a vpcd port.

This file is executed by the system interpreter (``/usr/bin/python3``), not
imported by sscard: Debian installs the library off ``sys.path``, under
``/usr/lib/python3/site-packages/virtualsmartcard``, for the system Python.
It imports only the standard library and the stock package.

The stock code has Python 3 bugs, worked around here without touching its
card logic or its socket handling (whose latency is what the benchmark
measures as the "stock" anchor):

1. ``CryptoUtils`` falls back to the Python 2 module ``sha`` when PyCrypto is
   missing, so importing ``VirtualICC`` fails; a ``sha`` module backed by
   ``hashlib.sha1`` is registered first.
2. ``TLVutils.pack`` ends with ``b"".join(result)`` over a ``bytes`` object
   (a ``str`` in Python 2), so every FCI answer raises ``TypeError``; it is
   replaced, before the other modules bind it, by a BER-TLV encoder of the
   same ``(tag, length, value)`` input.
3. ``VirtualICC.run`` catches only its own ``SwError``; any other exception
   in the card OS ends the process and pulls the card.  ``execute`` is
   wrapped to answer ``6F00`` (no precise diagnosis) instead.

Usage: ``python3 vicc_launcher.py --port PORT [--host 127.0.0.1]
[--library DIR] [--type iso7816]``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

DEFAULT_LIBRARY = "/usr/lib/python3/site-packages/virtualsmartcard"
NO_DIAGNOSIS = b"\x6f\x00"


def _sha_module() -> types.ModuleType:
    module = types.ModuleType("sha")
    module.new = hashlib.sha1  # type: ignore[attr-defined]
    module.digest_size = 20  # type: ignore[attr-defined]
    return module


def _encode_tag(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def ber_pack(tlv_data: Any, recalculate_length: bool = False) -> bytes:
    """BER-TLV of a list of ``(tag, length, value)``; ``value`` bytes or a nested list."""
    out = bytearray()
    for item in tlv_data:
        tag, length, value = item[0], item[1], item[2]
        if tag in (0x00, 0xFF):
            out.append(tag)
            continue
        if not isinstance(value, bytes | bytearray):
            value = ber_pack(value, recalculate_length)
        if recalculate_length:
            length = len(value)
        out += _encode_tag(tag) + _encode_length(length) + bytes(value)
    return bytes(out)


def _guarded(execute: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def run(message: bytes) -> bytes:
        try:
            return execute(message)
        except Exception as exc:  # the stock OS raises arbitrary errors on odd input
            print(f"vicc_launcher: card OS raised {type(exc).__name__}; answered 6F00", file=sys.stderr)
            return NO_DIAGNOSIS

    return run


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vicc_launcher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--library", default=DEFAULT_LIBRARY)
    parser.add_argument("--type", default="iso7816", dest="card_type")
    args = parser.parse_args(argv)

    sys.path.insert(0, args.library)
    sys.modules.setdefault("sha", _sha_module())
    from virtualsmartcard import TLVutils

    TLVutils.pack = ber_pack
    from virtualsmartcard.VirtualSmartcard import VirtualICC

    signal.signal(signal.SIGTERM, _terminate)
    vicc = VirtualICC(None, args.card_type, args.host, args.port, logginglevel=logging.CRITICAL)
    vicc.os.execute = _guarded(vicc.os.execute)
    print(f"vicc_launcher: connected to vpcd at {args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        vicc.run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
