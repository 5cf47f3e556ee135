"""A card that is not a social security card, for the "wrong card type" paths.

It answers like a typical foreign contact card (a bank or transport card
with another application): ``6A82`` (file not found) to every SELECT, so
the SSSE application is absent, and ``6D00`` (instruction not supported)
to anything else.  Terminals must refuse it with the national interface's
wrong-card-type error; ``sscard emulator`` and the tests insert it.
"""

from __future__ import annotations

__all__ = ["FOREIGN_ATR", "ForeignCard"]

# A contact card with a historical-bytes application identifier that is not
# the social security card's.
FOREIGN_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

_SW_FILE_NOT_FOUND = bytes.fromhex("6A82")
_SW_INS_NOT_SUPPORTED = bytes.fromhex("6D00")
_INS_SELECT = 0xA4


class ForeignCard:
    """Not a social security card: ``6A82`` to SELECT, ``6D00`` to anything else."""

    def __init__(self, atr: bytes = FOREIGN_ATR) -> None:
        self._atr = atr

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        return None

    def power_off(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) >= 2 and apdu[1] == _INS_SELECT:
            return _SW_FILE_NOT_FOUND
        return _SW_INS_NOT_SUPPORTED
