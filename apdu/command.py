"""Immutable command APDUs (ISO/IEC 7816-3/-4 cases 1-4, short and extended).

``le`` is the number of response bytes expected: 1..256 for a short Le byte
(256 is encoded as ``00``) and 1..65536 for an extended Le (65536 is encoded
as ``00 00``).  ``le=0`` is accepted as the byte value ``00`` and normalised
to 256 (65536 when ``extended=True``).  ``extended=None`` chooses extended
length only when the data or Le do not fit in the short form; after
construction ``extended`` is always a bool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from apdu.errors import ProtocolError

__all__ = ["EXTENDED_MAX_DATA", "SHORT_MAX_DATA", "CommandApdu"]

SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536


def _byte(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ProtocolError(f"command APDU: {name} must be a byte 0..255, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool | None = None
    sensitive: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _byte(name, getattr(self, name))
        if not isinstance(self.data, bytes):
            if isinstance(self.data, (bytearray, memoryview)):
                object.__setattr__(self, "data", bytes(self.data))
            else:
                raise ProtocolError(f"command APDU: data must be bytes, got {type(self.data).__name__}")
        le = self.le
        if le is not None:
            if isinstance(le, bool) or not isinstance(le, int):
                raise ProtocolError(f"command APDU: le must be an int or None, got {le!r}")
            if le == 0:
                le = EXTENDED_MAX_LE if self.extended else SHORT_MAX_LE
            if not 1 <= le <= EXTENDED_MAX_LE:
                raise ProtocolError(f"command APDU: le {le} outside 1..65536")
            object.__setattr__(self, "le", le)
        n = len(self.data)
        if n > EXTENDED_MAX_DATA:
            raise ProtocolError(f"command APDU: {n} data bytes exceed 65535")
        needs_extended = n > SHORT_MAX_DATA or (le is not None and le > SHORT_MAX_LE)
        if self.extended is None:
            object.__setattr__(self, "extended", needs_extended)
        elif self.extended is False and needs_extended:
            raise ProtocolError(
                f"command APDU: {n} data bytes / Le {le} do not fit a short APDU (extended=False)"
            )
        elif not isinstance(self.extended, bool):
            raise ProtocolError(f"command APDU: extended must be a bool or None, got {self.extended!r}")
        if not n and le is None:
            object.__setattr__(self, "extended", False)  # case 1 has no length field

    # ------------------------------------------------------------- accessors

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    @property
    def lc(self) -> int:
        return len(self.data)

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 (no data, no Le), 2 (Le), 3 (data), 4 (data and Le)."""
        return 1 + (1 if self.le is not None else 0) + (2 if self.data else 0)

    @property
    def secure_messaging(self) -> bool:
        """CLA indicates secure messaging (first inter-industry CLA bit 04)."""
        return bool(self.cla & 0x04) and not self.cla & 0x40

    # ------------------------------------------------------------- encoding

    def encode(self) -> bytes:
        out = bytearray(self.header)
        le = self.le
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
                if le is not None:
                    out += (le % EXTENDED_MAX_LE).to_bytes(2, "big")
            elif le is not None:
                out += b"\x00" + (le % EXTENDED_MAX_LE).to_bytes(2, "big")
        else:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if le is not None:
                out.append(le % SHORT_MAX_LE)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, raw: bytes, *, sensitive: bool = False) -> CommandApdu:
        """Parse an encoded command strictly (inconsistent Lc or trailing bytes are errors)."""
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise ProtocolError(f"command APDU: {n} bytes, a header needs 4")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        b = len(body)

        def make(data: bytes, le: int | None, extended: bool) -> CommandApdu:
            return cls(cla, ins, p1, p2, data, le, extended, sensitive)

        if b == 0:
            return make(b"", None, False)
        if b == 1:
            return make(b"", body[0] or SHORT_MAX_LE, False)
        if body[0] != 0:
            lc = body[0]
            if b == 1 + lc:
                return make(body[1:], None, False)
            if b == 2 + lc:
                return make(body[1:-1], body[-1] or SHORT_MAX_LE, False)
            raise ProtocolError(
                f"command APDU: Lc={lc} inconsistent with {b - 1} bytes after it (short form)"
            )
        if b == 3:
            return make(b"", int.from_bytes(body[1:3], "big") or EXTENDED_MAX_LE, True)
        if b < 3:
            raise ProtocolError(f"command APDU: truncated extended length field ({b} body bytes)")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ProtocolError("command APDU: extended Lc of 0 is invalid")
        if b == 3 + lc:
            return make(body[3:], None, True)
        if b == 5 + lc:
            return make(body[3:-2], int.from_bytes(body[-2:], "big") or EXTENDED_MAX_LE, True)
        raise ProtocolError(f"command APDU: extended Lc={lc} inconsistent with {b - 3} bytes after it")

    # ------------------------------------------------------------- variants

    def with_le(self, le: int | None) -> CommandApdu:
        return replace(self, le=le, extended=None if not self.extended else True)

    def with_cla(self, cla: int) -> CommandApdu:
        return replace(self, cla=cla)

    def with_data(self, data: bytes) -> CommandApdu:
        return replace(self, data=data, extended=None if not self.extended else True)

    def as_sensitive(self) -> CommandApdu:
        return replace(self, sensitive=True)

    # ----------------------------------------------------------------- repr

    def __repr__(self) -> str:
        from apdu.redaction import redact_command_data, render_hex

        parts = [f"CommandApdu({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}"]
        if self.data:
            shown = redact_command_data(self)
            parts.append(f" Lc={len(self.data)} data={render_hex(shown)}")
        if self.le is not None:
            parts.append(f" Le={self.le}")
        if self.extended:
            parts.append(" extended")
        return "".join(parts) + ")"

    __str__ = __repr__
