"""SCardControl for PC/SC part 10 (PIN pad) features: a thin adapter.

``apdu.pcsc.PcscTransport`` offers no SCardControl, so this module calls it on
the transport's card handle (``control(code, data)`` on the transport is used
instead as soon as the transport has one).  Feature discovery is
``CM_IOCTL_GET_FEATURE_REQUEST`` (``SCARD_CTL_CODE(3400)``): the reader answers
a list of ``tag | 04 | control code (big endian)``; a reader or driver that
does not support the request (vpcd among them) has no features, and the
service falls back to its PIN page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from apdu.errors import NoCardError, ProtocolError, SscardError
from apdu.transport import Transport

__all__ = [
    "FEATURE_MODIFY_PIN_DIRECT",
    "FEATURE_VERIFY_PIN_DIRECT",
    "ControlChannel",
    "PcscControlChannel",
    "get_feature_request_code",
    "parse_features",
]

FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07
GET_FEATURE_REQUEST = 3400


class ControlChannel(Protocol):
    """A reader's control channel (SCardControl on a connected card)."""

    def control(self, code: int, data: bytes) -> bytes: ...

    def features(self) -> Mapping[int, int]:
        """``{feature tag: control code}``; empty when the reader has none."""
        ...


def get_feature_request_code() -> int:
    """``SCARD_CTL_CODE(3400)`` of the platform (pcsc-lite: 0x42000000 + 3400)."""
    from smartcard import scard  # type: ignore[import-untyped]

    return int(scard.SCARD_CTL_CODE(GET_FEATURE_REQUEST))


def parse_features(data: bytes) -> dict[int, int]:
    """Parse the TLV answer of the feature request; ProtocolError when malformed."""
    out: dict[int, int] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ProtocolError("feature list: truncated TLV header")
        tag, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if length != 4 or len(value) != 4:
            raise ProtocolError(f"feature list: tag {tag:02X} has length {length}, 4 expected")
        out[tag] = int.from_bytes(value, "big")
        i += 2 + length
    return out


class PcscControlChannel:
    """SCardControl on a connected :class:`apdu.pcsc.PcscTransport`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._features: dict[int, int] | None = None

    @classmethod
    def for_transport(cls, transport: Transport) -> PcscControlChannel | None:
        if callable(getattr(transport, "control", None)) or hasattr(transport, "_card"):
            return cls(transport)
        return None

    def control(self, code: int, data: bytes) -> bytes:
        method = getattr(self._transport, "control", None)
        if callable(method):
            answer = method(code, data)
            return bytes(answer)
        from smartcard import scard

        from apdu.pcsc import error_for_pcsc

        handle = getattr(self._transport, "_card", None)
        if handle is None:
            raise NoCardError(f"{self._transport.reader}: not connected")
        hresult, response = scard.SCardControl(handle, code, list(data))
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for_pcsc(hresult, f"SCardControl({self._transport.reader})")
        return bytes(response)

    def features(self) -> Mapping[int, int]:
        if self._features is None:
            try:
                raw = self.control(get_feature_request_code(), b"")
                self._features = parse_features(raw)
            except SscardError:
                # Not supported by the driver (or the card went away): no PIN pad.
                self._features = {}
        return self._features
