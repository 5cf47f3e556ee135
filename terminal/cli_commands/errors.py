"""The CLI's own exceptions (identifiers, codes and texts in
``terminal/data/cli.toml`` ``[errors.<Class>]``)."""

from __future__ import annotations

from typing import Any

from apdu.errors import InvalidInput, SscardError, TransportError, apply_error_row
from terminal._data import load_data

__all__ = [
    "CliConfigError",
    "DemoSlotUnavailable",
    "DemoStepFailed",
    "InternalFailure",
    "OperationCancelled",
    "PresentationRefused",
    "UsageProblem",
]


class _CliDefaults:
    """Mixin: class defaults from terminal/data/cli.toml [errors]."""

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, load_data("cli")["errors"].get(cls.__name__))


class CliConfigError(_CliDefaults, InvalidInput):
    """The configuration file is unreadable or holds a bad value (exit 2)."""

    def __init__(self, message: str = "", *, message_zh: str | None = None) -> None:
        super().__init__(message, message_zh=message_zh)


class PresentationRefused(_CliDefaults, SscardError):
    """The registry refuses the card in the reader (reported lost, replaced,
    cancelled): ``reason`` is the registry's decision id, ``block_on_card``
    whether the terminal should block the application, ``blocked`` whether
    it is blocked on the card now (exit 10)."""

    def __init__(
        self,
        message: str = "",
        *,
        reason: str = "",
        block_on_card: bool = False,
        blocked: bool = False,
        message_zh: str | None = None,
        national_code: int | None = None,
    ) -> None:
        super().__init__(message, message_zh=message_zh, national_code=national_code)
        self.reason = reason
        self.block_on_card = block_on_card
        self.blocked = blocked

    def _state(self) -> dict[str, Any]:
        return {
            **super()._state(),
            "reason": self.reason,
            "block_on_card": self.block_on_card,
            "blocked": self.blocked,
        }

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["reason"] = self.reason
        out["block_on_card"] = self.block_on_card
        out["blocked"] = self.blocked
        return out


class DemoSlotUnavailable(_CliDefaults, TransportError):
    """``sscard demo`` found no free vpcd slot, or the slot asked for holds a card."""


class DemoStepFailed(_CliDefaults, SscardError):
    """A demo step did not give the outcome it must give."""


class InternalFailure(_CliDefaults, SscardError):
    """An unexpected exception, reported without its text (it could carry data)."""


class OperationCancelled(_CliDefaults, SscardError):
    """The user declined a confirmation or interrupted a prompt (exit 1; -31)."""


class UsageProblem(_CliDefaults, InvalidInput):
    """A command-line usage error reported as a JSON body (``--json``)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
