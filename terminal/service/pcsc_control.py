"""A reader's control channel (PC/SC part 10, PIN pad features) for the service.

SCardControl and the feature discovery live in :mod:`apdu.pcsc`
(:meth:`apdu.pcsc.PcscTransport.control` / :meth:`~apdu.pcsc.PcscTransport.features`);
this module only adapts a transport that has them to :class:`ControlChannel`,
the small surface the PIN pad code needs (tests plug in their own).  A
transport without a control channel (in process) has none, and a reader
whose driver does not answer the feature request (vpcd among them) has no
features: the service then falls back to its PIN page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from apdu.errors import SscardError
from apdu.transport import Transport

__all__ = [
    "FEATURE_MODIFY_PIN_DIRECT",
    "FEATURE_VERIFY_PIN_DIRECT",
    "ControlChannel",
    "TransportControlChannel",
]

FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07


class ControlChannel(Protocol):
    """A reader's control channel (SCardControl on a connected card)."""

    def control(self, code: int, data: bytes) -> bytes: ...

    def features(self) -> Mapping[int, int]:
        """``{feature tag: control code}``; empty when the reader has none."""
        ...


class TransportControlChannel:
    """The control channel of a transport offering ``control`` and ``features``
    (:class:`apdu.pcsc.PcscTransport`); features are asked once and kept."""

    def __init__(
        self,
        control: Callable[[int, bytes], bytes],
        features: Callable[[], Mapping[int, int]],
    ) -> None:
        self._control = control
        self._ask_features = features
        self._features: dict[int, int] | None = None

    @classmethod
    def for_transport(cls, transport: Transport) -> TransportControlChannel | None:
        control = getattr(transport, "control", None)
        features = getattr(transport, "features", None)
        if callable(control) and callable(features):
            return cls(control, features)
        return None

    def control(self, code: int, data: bytes) -> bytes:
        return bytes(self._control(code, data))

    def features(self) -> Mapping[int, int]:
        if self._features is None:
            try:
                self._features = dict(self._ask_features())
            except SscardError:
                # The card went away while asking: no PIN pad for this session.
                self._features = {}
        return self._features
