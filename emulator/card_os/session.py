"""Volatile session state of the card OS: cleared by power-off and reset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Session"]


@dataclass(slots=True)
class Session:
    current_ef: int | None = None
    challenge: bytes | None = field(default=None, repr=False)
    authenticated: set[int] = field(default_factory=set)
    pin_verified: bool = False
    pending: bytes = field(default=b"", repr=False)
    # the current application other than the social security one (emulator.card_os.applications)
    application: Any = field(default=None, repr=False)

    def clear(self) -> None:
        self.current_ef = None
        self.challenge = None
        self.authenticated.clear()
        self.pin_verified = False
        self.pending = b""
        self.application = None
