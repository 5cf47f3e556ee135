"""Exceptions of the emulator host, its control channel and the emulator CLI.

All derive from :class:`EmulatorError` (an :class:`apdu.errors.SscardError`).
Identifiers, national codes, exit codes and the bilingual texts are data
(``emulator/data/errors.toml``).  ``EmulatorError(detail, detail_zh=...)``
appends a detail (a slot number, a file name, an option) to the default
texts; details never carry PINs, keys or personal data.
"""

from __future__ import annotations

from typing import Any

from apdu.errors import SscardError, apply_error_row
from emulator._data import load_data

__all__ = [
    "CardNotSeen",
    "ControlError",
    "EmulatorError",
    "EmulatorUsageError",
    "FaultSpecError",
    "HostNotRunning",
    "ImageExists",
    "ImageInUse",
    "RemoteError",
    "SlotInUse",
    "SlotUnavailable",
    "UnknownSlot",
    "exit_code_for",
]


class EmulatorError(SscardError):
    """Base of the emulator's exceptions; ``exit_code`` is the CLI exit code."""

    exit_code: int = 1

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, load_data("errors")["classes"].get(cls.__name__))

    def __init__(self, detail: str = "", *, detail_zh: str | None = None) -> None:
        cls = type(self)
        en = f"{cls.message_en}: {detail}" if detail else cls.message_en
        zh_detail = detail if detail_zh is None else detail_zh
        zh = f"{cls.message_zh}：{zh_detail}" if zh_detail else cls.message_zh
        super().__init__(en, message_zh=zh)
        self.detail = detail
        self.detail_zh = detail_zh

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.detail, self.detail_zh))


def _rebuild(cls: type[EmulatorError], detail: str, detail_zh: str | None) -> EmulatorError:
    return cls(detail, detail_zh=detail_zh)


EmulatorError._load_defaults()


class SlotUnavailable(EmulatorError):
    """vpcd does not accept a card on the slot (no pcscd, or the slot is not configured)."""


class HostNotRunning(EmulatorError):
    """No running ``emulator run`` process serves the slot (CLI exit code 3)."""


class SlotInUse(EmulatorError):
    """A card host already has a card for the slot."""


class UnknownSlot(EmulatorError):
    """The host has no card for the slot."""


class ControlError(EmulatorError):
    """The control socket answered garbage, or the request failed on the host side."""


class FaultSpecError(EmulatorError):
    """A fault specification names an unknown kind or has an invalid parameter."""


class ImageExists(EmulatorError):
    """``create`` would overwrite an existing image without ``--force``."""


class ImageInUse(EmulatorError):
    """Another card host holds the image file's lock."""


class RemoteError(EmulatorError):
    """An error a card host answered on its control socket, re-raised in the
    client with the host's identifier, texts, national code and exit code."""

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        body = body or {}
        super().__init__()
        self.body = dict(body)
        setattr(self, "error_id", str(body.get("error", type(self).error_id)))  # noqa: B010 - per instance
        self.message_zh = str(body.get("message", type(self).message_zh))
        self.national_code = int(body.get("national_code", type(self).national_code))
        self.exit_code = int(body.get("exit_code", type(self).exit_code))
        sw = body.get("sw")
        self.sw = int(sw, 16) if isinstance(sw, str) else None
        self.args = (str(body.get("message_en", type(self).message_en)),)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.body,))


class CardNotSeen(EmulatorError):
    """pcscd did not show a virtual card arriving in (or leaving) its reader in time."""


class EmulatorUsageError(EmulatorError):
    """Options that do not fit together (for example --image without --slot pairs)."""


def exit_code_for(exc: SscardError) -> int:
    """The CLI exit code of any sscard error (emulator errors carry their own)."""
    if isinstance(exc, EmulatorError):
        return exc.exit_code
    table: dict[str, int] = load_data("errors")["exit_codes"]
    for klass in type(exc).__mro__:
        code = table.get(klass.__name__)
        if code is not None:
            return int(code)
    return 1
