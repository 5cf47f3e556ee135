"""Fast, strict parsing of a command APDU on the card side.

The card OS sees raw bytes from vpcd or the in-process transport.  It needs
the header, the data field and whether (and which) Le was sent, quickly and
without raising deep exceptions: a malformed APDU answers 6700.  Short and
extended forms are accepted (ISO/IEC 7816-3 cases 1-4).  ``le`` is None when
absent, otherwise the number of bytes expected (``00`` -> 256, extended
``00 00`` -> 65536).
"""

from __future__ import annotations

from emulator.card_os.sw import SW_WRONG_LENGTH, CardStatus

__all__ = ["Command", "parse_command"]


class Command:
    __slots__ = ("cla", "data", "ins", "le", "p1", "p2", "raw")

    def __init__(self, raw: bytes, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
        self.raw = raw
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le

    @property
    def secure_messaging(self) -> bool:
        return bool(self.cla & 0x04)

    def __repr__(self) -> str:
        return (
            f"Command({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
            f"Lc={len(self.data)}, Le={self.le})"
        )


def parse_command(raw: bytes) -> Command:
    """Parse ``raw``; a length inconsistency raises ``CardStatus(6700)``."""
    n = len(raw)
    if n < 4:
        raise CardStatus(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    if n == 4:
        return Command(raw, cla, ins, p1, p2, b"", None)
    if n == 5:
        return Command(raw, cla, ins, p1, p2, b"", raw[4] or 256)
    lc = raw[4]
    if lc:
        if n == 5 + lc:
            return Command(raw, cla, ins, p1, p2, raw[5:], None)
        if n == 6 + lc:
            return Command(raw, cla, ins, p1, p2, raw[5:-1], raw[-1] or 256)
        raise CardStatus(SW_WRONG_LENGTH)
    # extended length: 00 then two bytes
    if n == 7:
        return Command(raw, cla, ins, p1, p2, b"", int.from_bytes(raw[5:7], "big") or 65536)
    lc = int.from_bytes(raw[5:7], "big")
    if not lc:
        raise CardStatus(SW_WRONG_LENGTH)
    if n == 7 + lc:
        return Command(raw, cla, ins, p1, p2, raw[7:], None)
    if n == 9 + lc:
        return Command(raw, cla, ins, p1, p2, raw[7:-2], int.from_bytes(raw[-2:], "big") or 65536)
    raise CardStatus(SW_WRONG_LENGTH)
