"""Exceptions of the terminal layer, subclasses of the project-wide hierarchy.

Identifiers, national codes and texts are data (``terminal/data/errors.toml``,
keyed by class name); ``_load_defaults`` reads them from there.  Messages
carry reader names and file addresses, never PINs, keys or personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apdu.errors import (
    AmbiguousReaderError,
    CardRemovedError,
    KeySourceError,
    ReaderNotFoundError,
    SscardError,
    apply_error_row,
)
from terminal._data import load_data

__all__ = ["CardDataMismatch", "HsmUnavailable", "ReaderAmbiguous", "ReaderNotMatched", "TornOperation"]


def _row(cls: type) -> dict[str, Any] | None:
    row: dict[str, Any] | None = load_data("errors")["classes"].get(cls.__name__)
    return row


class _TerminalDefaults:
    """Mixin: class defaults from terminal/data/errors.toml."""

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, _row(cls))


class ReaderNotMatched(_TerminalDefaults, ReaderNotFoundError):
    """No reader matches the ``--reader`` text or the iType rule (-12).

    ``available``: the reader names that were considered.
    """

    def __init__(self, message: str = "", *, available: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.available: tuple[str, ...] = tuple(available)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "available": self.available}


class ReaderAmbiguous(_TerminalDefaults, AmbiguousReaderError):
    """The ``--reader`` text matches several readers (-14); ``candidates`` lists them."""

    def __init__(self, message: str = "", *, candidates: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.candidates: tuple[str, ...] = tuple(candidates)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "candidates": self.candidates}


class CardDataMismatch(_TerminalDefaults, SscardError):
    """Caller data (``pCardInfo``: card identification code, card number) do not
    match the card in the reader (-22)."""


class HsmUnavailable(_TerminalDefaults, KeySourceError):
    """The security module of ``--hsm-command`` cannot be started, ended, or
    did not answer in time (-1020; a key source error, exit 9)."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class TornOperation(_TerminalDefaults, CardRemovedError):
    """The card vanished after a state-changing command was sent (-2).

    ``entry_id`` is the journal entry marked torn (None with the null
    journal), ``operation`` the flow's journal operation name.  The next
    session resolves the entry with :func:`terminal.flows.resolve_torn`.
    """

    def __init__(
        self, message: str = "", *, operation: str = "", entry_id: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.operation = operation
        self.entry_id = entry_id

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "operation": self.operation, "entry_id": self.entry_id}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["operation"] = self.operation
        if self.entry_id is not None:
            out["journal_entry"] = self.entry_id
        return out
