"""In-process stand-ins for the service's reader side: a backend over card
objects (no pcscd) and a reader PIN pad that speaks PC/SC part 10.

:class:`FakePinPad` checks the ``PIN_VERIFY_STRUCTURE`` /
``PIN_MODIFY_STRUCTURE`` the service sends, "types" the queued digits into
the PIN block as packed BCD, sends the command to the card and answers its
status word, as a reader with a PIN pad does; a queued reader code
(``6400`` timeout, ``6401`` cancelled, ``6402`` entries differ) is answered
instead.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from apdu.inprocess import InProcessTransport
from apdu.transport import Transport
from emulator.psam import PsamCard
from emulator.vpcd import VirtualCard
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.readers import ReaderInfo, classify
from terminal.service.pcsc_control import FEATURE_MODIFY_PIN_DIRECT, FEATURE_VERIFY_PIN_DIRECT, ControlChannel
from terminal.watch import ReaderEvent

CARD_READER = "In-process PIN pad reader"
PSAM_READER = "In-process PSAM"
VERIFY_CODE = 0x42330006
MODIFY_CODE = 0x42330007
FEATURE_REQUEST = 0x42000D48
VERIFY_HEADER = 19
MODIFY_HEADER = 24


def bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


@dataclass
class FakePinPad:
    """A reader PIN pad (see the module docstring); ``typed`` holds digit
    strings or reader codes (ints) in the order the holder would type them."""

    transport: Transport
    typed: deque[str | int] = field(default_factory=deque)
    structures: list[bytes] = field(default_factory=list)
    has_modify: bool = True

    def features(self) -> Mapping[int, int]:
        found = {FEATURE_VERIFY_PIN_DIRECT: VERIFY_CODE}
        if self.has_modify:
            found[FEATURE_MODIFY_PIN_DIRECT] = MODIFY_CODE
        return found

    def _next(self) -> str | int:
        return self.typed.popleft() if self.typed else 0x6400

    def control(self, code: int, data: bytes) -> bytes:
        self.structures.append(bytes(data))
        if code == VERIFY_CODE:
            return self._verify(data)
        if code == MODIFY_CODE:
            return self._modify(data)
        raise AssertionError(f"unexpected control code {code:#x}")

    def _verify(self, data: bytes) -> bytes:
        (_t1, _t2, fmt, block, length_fmt, extra, validation, messages, lang, _index, _teo, size) = (
            struct.unpack("<BBBBBHBBHB3sI", data[:VERIFY_HEADER])
        )
        apdu = bytearray(data[VERIFY_HEADER:])
        assert (fmt, length_fmt, validation, messages, lang) == (0x81, 0, 0x02, 1, 0x0804)
        assert extra == 0x0606 and size == len(apdu) and apdu[:4] == bytes.fromhex("00200001")
        typed = self._next()
        if isinstance(typed, int):
            return typed.to_bytes(2, "big")
        apdu[5 : 5 + (block & 0x0F)] = bcd(typed)
        return self.transport.transmit(bytes(apdu))

    def _modify(self, data: bytes) -> bytes:
        fields = struct.unpack("<BBBBBBBHBBBHBBB3sI", data[:MODIFY_HEADER])
        fmt, block, old_at, new_at, extra, confirm, size = (
            fields[2],
            fields[3],
            fields[5],
            fields[6],
            fields[7],
            fields[8],
            fields[16],
        )
        apdu = bytearray(data[MODIFY_HEADER:])
        assert fmt == 0x81 and extra == 0x0606 and confirm == 0x03 and size == len(apdu)
        assert apdu[:4] == bytes.fromhex("805E0101")
        entries = [self._next() for _ in range(3)]
        for entry in entries:
            if isinstance(entry, int):
                return entry.to_bytes(2, "big")
        old, new, again = (str(e) for e in entries)
        if new != again:
            return bytes.fromhex("6402")
        size_block = block & 0x0F
        apdu[5 + old_at : 5 + old_at + size_block] = bcd(old)
        apdu[5 + new_at : 5 + new_at + size_block] = bcd(new)
        return self.transport.transmit(bytes(apdu))


class InProcessBackend:
    """:class:`terminal.service.backend.CardBackend` over card objects: one
    card reader (with or without a PIN pad) and one PSAM reader."""

    name = "inprocess"

    def __init__(self, card: VirtualCard | None, psam: PsamCard, *, pinpad: bool = True) -> None:
        self.card = card
        self.psam = psam
        self.pinpad = pinpad
        self.typed: deque[str | int] = deque()
        self.pads: list[FakePinPad] = []
        self.watching: Callable[[ReaderEvent], None] | None = None

    def readers(self) -> list[ReaderInfo]:
        atr = self.card.atr() if self.card is not None else None
        kind, source = classify(CARD_READER, atr)
        psam_kind, psam_source = classify(PSAM_READER, self.psam.atr())
        return [
            ReaderInfo(CARD_READER, kind, atr is not None, atr, source),
            ReaderInfo(PSAM_READER, psam_kind, True, self.psam.atr(), psam_source),
        ]

    def open_transport(self, reader: str) -> Transport:
        assert reader == CARD_READER
        return InProcessTransport(self.card, reader=CARD_READER)

    def control_channel(self, transport: Transport) -> ControlChannel | None:
        if not self.pinpad:
            return None
        pad = FakePinPad(transport, self.typed)
        self.pads.append(pad)
        return pad

    def open_psam(self, pattern: str) -> KeySource:
        return PsamKeySource(InProcessTransport(self.psam, reader=PSAM_READER))

    def start_watch(self, callback: Callable[[ReaderEvent], None]) -> None:
        self.watching = callback

    def stop_watch(self) -> None:
        self.watching = None
