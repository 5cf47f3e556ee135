"""Response shaping shared by the card OS and the PSAM: T=0 ``61xx`` for
case-4 commands without Le, splitting of answers longer than 256 bytes, and
GET RESPONSE ``00 C0 00 00 Le``.  Functions return ``(data, sw, pending)``
where ``pending`` is what GET RESPONSE will serve next."""

from __future__ import annotations

from emulator.card_os.command import Command
from emulator.card_os.sw import (
    SW_BYTES_REMAINING,
    SW_CONDITIONS,
    SW_OK,
    SW_WRONG_LE,
    SW_WRONG_P1P2,
)

__all__ = ["SHORT_MAX", "get_response", "shape"]

SHORT_MAX = 256


def _remaining_sw(count: int) -> int:
    return SW_BYTES_REMAINING | (count if count < SHORT_MAX else 0)


def shape(data: bytes, cmd: Command, t0: bool) -> tuple[bytes, int, bytes]:
    """The answer to ``cmd`` whose result is ``data`` (success)."""
    if not data:
        return b"", SW_OK, b""
    if t0 and cmd.data and cmd.le is None:
        return b"", _remaining_sw(len(data)), data
    if len(data) > SHORT_MAX:
        return data[:SHORT_MAX], _remaining_sw(len(data) - SHORT_MAX), data[SHORT_MAX:]
    return data, SW_OK, b""


def get_response(cmd: Command, pending: bytes) -> tuple[bytes, int, bytes]:
    """Serve ``pending``: Le bytes (00: up to 256) then ``61xx`` or ``9000``;
    Le larger than what remains answers ``6Cxx`` and keeps it; nothing
    pending answers ``6985``."""
    if cmd.p1 or cmd.p2:
        return b"", SW_WRONG_P1P2, b""
    if not pending:
        return b"", SW_CONDITIONS, b""
    le = SHORT_MAX if cmd.le is None else min(cmd.le, SHORT_MAX)
    if le < SHORT_MAX and le > len(pending):
        return b"", SW_WRONG_LE | len(pending), pending
    chunk, rest = pending[:le], pending[le:]
    if rest:
        return chunk, _remaining_sw(len(rest)), rest
    return chunk, SW_OK, b""
