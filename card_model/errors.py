"""Exceptions of the card model.

All derive from :class:`CardModelError` (an :class:`apdu.errors.SscardError`).
Value errors additionally derive from :class:`apdu.errors.InvalidInput`, so a
caller catching bad input catches both the element codecs' errors and ours.
Identifiers, national codes and the bilingual texts live in
``card_model/data/errors.toml``; messages name the field and the problem,
never the rejected value (it may be a social security number or a key).
"""

from __future__ import annotations

from typing import Any

from apdu.errors import InvalidInput, SscardError, apply_error_row
from card_model._data import load_data

__all__ = [
    "CardModelError",
    "HolderFileError",
    "ImageError",
    "InvalidCardIdCode",
    "InvalidCharacters",
    "InvalidLength",
    "InvalidValue",
    "IssuanceError",
    "KeyLoadError",
    "KeySetError",
    "ProfileError",
]


def _table() -> dict[str, Any]:
    return load_data("errors.toml")


def _pair(section: str, key: str) -> tuple[str, str]:
    row = _table()[section].get(key)
    if row is None:
        return key.replace("_", " "), key
    return str(row["en"]), str(row["zh"])


class CardModelError(SscardError):
    """Base of the card model's exceptions.

    ``CardModelError(field, reason, detail="")``: ``field`` and ``reason``
    are keys of ``[fields]`` / ``[reasons]`` in the errors data file; the
    optional English ``detail`` (never a value) is appended to the message.
    """

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, _table()["classes"].get(cls.__name__))

    def __init__(self, field: str = "", reason: str = "", detail: str = "") -> None:
        self.field = field
        self.reason = reason
        self.detail = detail
        if field or reason:
            field_en, field_zh = _pair("fields", field) if field else ("", "")
            reason_en, reason_zh = _pair("reasons", reason) if reason else ("", "")
            en = f"{field_en}: {reason_en}" if field_en else reason_en
            zh = f"{field_zh}{reason_zh}"
        else:
            en, zh = type(self).message_en, type(self).message_zh
        if detail:
            en = f"{en} ({detail})"
        self._init_base(en, zh)

    def _init_base(self, en: str, zh: str) -> None:
        SscardError.__init__(self, en, message_zh=zh, national_code=type(self).national_code)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason, self.detail))


CardModelError._load_defaults()


class InvalidValue(CardModelError, InvalidInput):
    """A holder or card value failed validation (national -23, data not valid)."""

    def _init_base(self, en: str, zh: str) -> None:
        InvalidInput.__init__(self, en, message_zh=zh, national_code=type(self).national_code)
        self.kind = None


class InvalidCharacters(InvalidValue):
    """Illegal characters in a value (national -41)."""


class InvalidLength(InvalidValue):
    """A value has the wrong length (national -42)."""


class InvalidCardIdCode(InvalidValue):
    """A malformed card identification code (national -20)."""


class ProfileError(CardModelError):
    """A card profile file is missing, malformed or inconsistent."""


class KeySetError(CardModelError):
    """An issuer key set file is malformed or a key is missing."""


class ImageError(CardModelError):
    """A card or PSAM image file is unreadable, malformed or of an unknown version."""


class HolderFileError(InvalidValue):
    """A holder data TOML file is unreadable or malformed (national -23)."""


class KeyLoadError(CardModelError):
    """A WRITE KEY cryptogram or its target is malformed (card_model.keyload)."""


class IssuanceError(CardModelError):
    """Software issuance cannot build the card image."""
