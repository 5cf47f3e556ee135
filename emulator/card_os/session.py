"""Volatile session state of the card OS: cleared by power-off and reset."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Session"]


@dataclass(slots=True)
class Session:
    current_ef: int | None = None
    challenge: bytes | None = field(default=None, repr=False)
    authenticated: set[int] = field(default_factory=set)
    pin_verified: bool = False
    pending: bytes = field(default=b"", repr=False)

    def clear(self) -> None:
        self.current_ef = None
        self.challenge = None
        self.authenticated.clear()
        self.pin_verified = False
        self.pending = b""
