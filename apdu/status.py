"""Status words as data: meanings, exception classes and national codes.

The table is ``apdu/data/status_words.toml``; see its header for the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from apdu import errors
from apdu._tables import load_table
from apdu.errors import CardError

__all__ = [
    "Context",
    "StatusWord",
    "describe",
    "error_for",
    "infer_context",
    "lookup",
    "national_code_for_sw",
    "raise_for_sw",
]

Context = Literal["pin", "key"]


@dataclass(frozen=True, slots=True)
class _Entry:
    pattern: str
    mask: int
    value: int
    specificity: int
    en: str
    zh: str
    ok: bool
    classes: dict[str, type[CardError]]

    def matches(self, sw: int) -> bool:
        return (sw & self.mask) == self.value


@dataclass(frozen=True, slots=True)
class StatusWord:
    """One status word with its table entry resolved."""

    sw: int
    pattern: str
    en: str
    zh: str
    ok: bool
    error_class: type[CardError] | None
    pin_class: type[CardError] | None
    key_class: type[CardError] | None

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def class_for(self, context: Context | None) -> type[CardError] | None:
        if context == "pin" and self.pin_class is not None:
            return self.pin_class
        if context == "key" and self.key_class is not None:
            return self.key_class
        return self.error_class

    def __str__(self) -> str:
        return f"{self.sw:04X} {self.en}"


def _parse_pattern(pattern: str) -> tuple[int, int, int]:
    if len(pattern) != 4:
        raise LookupError(f"status_words.toml: bad pattern {pattern!r}")
    mask = value = 0
    specificity = 0
    for ch in pattern:
        mask <<= 4
        value <<= 4
        if ch in "xX":
            continue
        mask |= 0xF
        value |= int(ch, 16)
        specificity += 1
    return mask, value, specificity


def _resolve_class(name: str) -> type[CardError]:
    klass = getattr(errors, name, None)
    if not (isinstance(klass, type) and issubclass(klass, CardError)):
        raise TypeError(f"status_words.toml names {name!r}, which is not a CardError class")
    return klass


@cache
def _entries() -> tuple[_Entry, ...]:
    out: list[_Entry] = []
    for row in load_table("status_words")["sw"]:
        mask, value, specificity = _parse_pattern(row["pattern"])
        classes = {k: _resolve_class(row[k]) for k in ("class", "pin", "key") if k in row}
        out.append(
            _Entry(
                pattern=row["pattern"].upper().replace("X", "x"),
                mask=mask,
                value=value,
                specificity=specificity,
                en=row["en"],
                zh=row["zh"],
                ok=bool(row.get("ok", False)),
                classes=classes,
            )
        )
    out.sort(key=lambda e: -e.specificity)
    return tuple(out)


def _check(sw: int) -> int:
    if isinstance(sw, bool) or not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
        raise TypeError(f"a status word is an int 0x0000..0xFFFF, got {sw!r}")
    return sw


@cache
def lookup(sw: int) -> StatusWord:
    """The most specific table entry for ``sw`` (a catch-all entry exists)."""
    _check(sw)
    entry = next(e for e in _entries() if e.matches(sw))
    wildcard = sw & ~entry.mask & 0xFFFF
    n = wildcard >> _trailing_zero_bits(~entry.mask & 0xFFFF) if wildcard or ~entry.mask & 0xFFFF else 0
    return StatusWord(
        sw=sw,
        pattern=entry.pattern,
        en=entry.en.format(n=n),
        zh=entry.zh.format(n=n),
        ok=entry.ok,
        error_class=entry.classes.get("class"),
        pin_class=entry.classes.get("pin"),
        key_class=entry.classes.get("key"),
    )


def _trailing_zero_bits(mask: int) -> int:
    if mask == 0:
        return 0
    return (mask & -mask).bit_length() - 1


def describe(sw: int) -> tuple[str, str]:
    """``(english, chinese)`` meaning of a status word."""
    entry = lookup(sw)
    return entry.en, entry.zh


def error_for(sw: int, *, context: Context | None = None) -> CardError | None:
    """The exception for ``sw`` (None for 9000)."""
    klass = lookup(sw).class_for(context)
    if klass is None:
        return None
    return klass(sw)


def raise_for_sw(sw: int, context: Context | None = None) -> None:
    """Raise the mapped :class:`CardError` unless ``sw`` is 9000."""
    error = error_for(sw, context=context)
    if error is not None:
        raise error


def national_code_for_sw(sw: int, context: Context | None = None) -> int:
    """National interface code for a card answer: 0 for 9000, else -SW
    (or the class's own code, e.g. -51 for a wrong PIN with context "pin")."""
    error = error_for(sw, context=context)
    return 0 if error is None else error.national_code


def infer_context(cla: int, ins: int) -> Context | None:
    """Context of a command for SW mapping: "key" for SM commands (CLA bit 04)
    and key operations, "pin" for PIN commands, else None (table-driven)."""
    if cla & 0x04 and not cla & 0x40:
        return "key"
    table: dict[str, Context] = load_table("status_words")["context_by_ins"]
    return table.get(f"{ins:02X}")


def describe_national(code: int) -> tuple[str, str]:
    """``(english, chinese)`` text of a national interface return code
    (``data/national_codes.toml``); a -SW code not listed there is
    described by its status word."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"a national code is an int, got {code!r}")
    row = load_table("national_codes")["codes"].get(str(code))
    if row is not None:
        return row["en"], row["zh"]
    if -0xFFFF <= code <= -0x6000:
        return describe(-code)
    return f"error {code}", f"错误 {code}"
