"""Response APDUs: data field plus the two status bytes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from apdu.errors import ProtocolError
from apdu.status import Context, describe, error_for

__all__ = ["ResponseApdu"]


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            if isinstance(self.data, (bytearray, memoryview)):
                object.__setattr__(self, "data", bytes(self.data))
            else:
                raise ProtocolError(f"response APDU: data must be bytes, got {type(self.data).__name__}")
        if isinstance(self.sw, bool) or not isinstance(self.sw, int) or not 0 <= self.sw <= 0xFFFF:
            raise ProtocolError(f"response APDU: status word must be 0x0000..0xFFFF, got {self.sw!r}")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        raw = bytes(raw)
        if len(raw) < 2:
            raise ProtocolError(f"response APDU: {len(raw)} bytes, the status word needs 2")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.encode()

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def describe(self) -> tuple[str, str]:
        return describe(self.sw)

    def check(self, context: Context | None = None, *, accept: Collection[int] = ()) -> ResponseApdu:
        """Raise the mapped :class:`~apdu.errors.CardError` unless the SW is
        9000 or listed in ``accept`` (e.g. ``{0x6283}`` for a blocked SSSE
        SELECT, ``{0x6282}`` for a short READ BINARY).  Returns ``self``."""
        if self.sw == 0x9000 or self.sw in accept:
            return self
        error = error_for(self.sw, context=context)
        if error is not None:
            raise error
        return self

    def __repr__(self) -> str:
        # Data is not shown: responses may carry personal data or cryptograms.
        # Use the tracer (apdu.trace) for policy-based rendering.
        return f"ResponseApdu(<{len(self.data)} bytes> SW={self.sw:04X})"

    __str__ = __repr__
