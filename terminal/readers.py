"""Readers and their kinds; choosing the reader a flow works with.

A reader's kind (``contact``, ``contactless``, ``psam``, ``unknown``) is
decided by the rules in ``terminal/data/readers.toml``: the ATR of the card
in it first (PSAM historical bytes "BJPSAM", the PC/SC part 3 contactless
ATR ``3B 8n 80 01``), then the reader name as the driver spells it, then any
other ATR as a contact card.  Selection is by a case-insensitive substring
that must match exactly one reader, or by the national interface's ``iType``
(1 contact, 2 contactless, 3 contact first, 4 contactless first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from apdu import pcsc
from apdu.errors import InvalidInput, KeySourceError, NoCardError
from terminal._data import load_data
from terminal.errors import ReaderAmbiguous, ReaderNotMatched

__all__ = [
    "ITYPES",
    "KindSource",
    "ReaderInfo",
    "ReaderKind",
    "ReaderStatus",
    "classify",
    "describe_states",
    "find_psam_reader",
    "historical_bytes",
    "is_ssc_atr",
    "itype_order",
    "list_readers",
    "select_reader",
]

ReaderKind = Literal["contact", "contactless", "psam", "unknown"]
KindSource = Literal["atr", "name", "default"]
ReaderStatus = Literal["empty", "present", "in_use", "exclusive", "mute", "unavailable"]
ITYPES = (1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class _Rule:
    match: Literal["atr_historical", "atr_regex", "name"]
    pattern: str
    kind: ReaderKind
    regex: re.Pattern[str] | None
    needle: bytes

    def matches(self, name: str, atr: bytes | None) -> bool:
        if self.match == "name":
            assert self.regex is not None
            return self.regex.search(name) is not None
        if atr is None:
            return False
        if self.match == "atr_historical":
            return self.needle in historical_bytes(atr)
        assert self.regex is not None
        return self.regex.search(atr.hex().upper()) is not None


@cache
def _rules() -> tuple[_Rule, ...]:
    out = []
    for row in load_data("readers")["rule"]:
        match = row["match"]
        pattern = str(row["pattern"])
        if match not in ("atr_historical", "atr_regex", "name"):
            raise LookupError(f"terminal/data/readers.toml: unknown rule match {match!r}")
        if row["kind"] not in ("contact", "contactless", "psam", "unknown"):
            raise LookupError(f"terminal/data/readers.toml: unknown kind {row['kind']!r}")
        flags = re.IGNORECASE if match == "name" else 0
        out.append(
            _Rule(
                match=match,
                pattern=pattern,
                kind=row["kind"],
                regex=None if match == "atr_historical" else re.compile(pattern, flags),
                needle=bytes.fromhex(pattern) if match == "atr_historical" else b"",
            )
        )
    return tuple(out)


@cache
def _itypes() -> dict[int, tuple[ReaderKind, ...]]:
    table: dict[str, Any] = load_data("readers")["itype"]
    return {int(key): tuple(row["order"]) for key, row in table.items()}


def itype_order(itype: int) -> tuple[ReaderKind, ...]:
    """The reader kinds tried, in order, for a national ``iType`` (1..4)."""
    if isinstance(itype, bool) or not isinstance(itype, int) or itype not in _itypes():
        raise InvalidInput("iType must be 1, 2, 3 or 4", kind="parameter")
    return _itypes()[itype]


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (ISO 7816-3); ``b""`` for a malformed ATR."""
    atr = bytes(atr)
    if len(atr) < 2:
        return b""
    count = atr[1] & 0x0F
    y = atr[1] >> 4
    offset = 2
    while True:
        present = bin(y).count("1")
        td_index = offset + present - 1 if y & 0x8 else None
        offset += present
        if offset > len(atr) or td_index is None:
            break
        y = atr[td_index] >> 4
    if offset > len(atr):
        return b""
    return atr[offset : offset + count]


def is_ssc_atr(atr: bytes | None) -> bool:
    """True when the historical bytes announce a social security card ("BJSSC")."""
    if not atr:
        return False
    needle = bytes.fromhex(load_data("readers")["detection"]["ssc_historical"])
    return needle in historical_bytes(atr)


def classify(name: str, atr: bytes | None) -> tuple[ReaderKind, KindSource]:
    """The kind of reader ``name`` holding a card with ``atr`` (None: no card),
    and which kind of rule decided it."""
    for rule in _rules():
        if rule.matches(name, atr):
            return rule.kind, "name" if rule.match == "name" else "atr"
    return "unknown", "default"


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """One reader as listed: its kind and whether (and which) card is in it."""

    name: str
    kind: ReaderKind
    card_present: bool
    atr: bytes | None
    kind_source: KindSource = "default"
    mute: bool = False
    in_use: bool = False
    exclusive: bool = False
    unavailable: bool = False

    @property
    def state(self) -> ReaderStatus:
        """The reader's state in one word: ``unavailable`` (the reader is gone or
        broken), ``mute`` (a card that does not answer reset), ``exclusive`` /
        ``in_use`` (another application holds the card), ``present``, ``empty``."""
        if self.unavailable:
            return "unavailable"
        if not self.card_present:
            return "empty"
        if self.mute:
            return "mute"
        if self.exclusive:
            return "exclusive"
        if self.in_use:
            return "in_use"
        return "present"

    def to_dict(self) -> dict[str, Any]:
        """JSON of ``sscard readers`` (interfaces.md): name, kind, card present, ATR."""
        return {
            "name": self.name,
            "kind": self.kind,
            "card_present": self.card_present,
            "atr": self.atr.hex().upper() if self.atr else None,
        }


def describe_states(states: Sequence[pcsc.ReaderState]) -> list[ReaderInfo]:
    """ReaderInfo for PC/SC reader states (as :func:`apdu.pcsc.reader_states` gives them)."""
    out = []
    for state in states:
        atr = state.atr if state.present and state.atr else None
        kind, source = classify(state.name, atr)
        out.append(
            ReaderInfo(
                name=state.name,
                kind=kind,
                card_present=state.present,
                atr=atr,
                kind_source=source,
                mute=state.mute,
                in_use=state.in_use,
                exclusive=state.exclusive,
                unavailable=state.unavailable,
            )
        )
    return out


def list_readers() -> list[ReaderInfo]:
    """Every PC/SC reader with its kind and card; ``[]`` without readers.
    Raises :class:`apdu.errors.PcscUnavailableError` when pcscd is not running."""
    names = pcsc.list_readers()
    if not names:
        return []
    return describe_states(pcsc.reader_states(names))


def _by_pattern(readers: Sequence[ReaderInfo], pattern: str) -> list[ReaderInfo]:
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("reader: the name pattern is empty", kind="parameter")
    needle = pattern.strip().casefold()
    return [r for r in readers if needle in r.name.casefold()]


def _names(readers: Sequence[ReaderInfo]) -> str:
    return ", ".join(repr(r.name) for r in readers) or "none"


def select_reader(
    readers: Sequence[ReaderInfo] | None = None,
    *,
    pattern: str | None = None,
    itype: int | None = None,
    include_psam: bool = False,
) -> ReaderInfo:
    """Pick the reader a card flow uses.

    ``pattern``: case-insensitive substring of the reader name; it must match
    exactly one reader (an exact full-name match wins over longer names),
    else :class:`ReaderNotMatched` (-12) or :class:`ReaderAmbiguous` (-14)
    listing the candidates.  ``itype``: the national rule; the first reader of
    the first kind in its order that holds a card, else :class:`NoCardError`
    (-2), or :class:`ReaderNotMatched` when there is no reader at all.  With
    both, the iType rule chooses among the readers the pattern matches.
    Without either: the only non-PSAM reader, or the iType 3 rule.
    PSAM readers are never chosen for a card flow unless ``include_psam``.
    """
    pool = list(readers) if readers is not None else list_readers()
    if pattern is not None:
        matched = _by_pattern(pool, pattern)
        if not matched:
            raise ReaderNotMatched(
                f"no reader name contains {pattern.strip()!r}; readers: {_names(pool)}",
                available=[r.name for r in pool],
            )
        if itype is None:
            if len(matched) == 1:
                return matched[0]
            exact = [r for r in matched if r.name.casefold() == pattern.strip().casefold()]
            if len(exact) == 1:
                return exact[0]
            raise ReaderAmbiguous(
                f"{pattern.strip()!r} matches {len(matched)} readers: {_names(matched)}",
                candidates=[r.name for r in matched],
            )
        pool = matched
    candidates = [r for r in pool if include_psam or r.kind != "psam"]
    if itype is None:
        if len(candidates) == 1:
            return candidates[0]
        itype = 3
    order = itype_order(itype)
    if not pool:
        raise ReaderNotMatched("no card reader is connected")
    for kind in order:
        for reader in candidates:
            if reader.kind == kind and reader.card_present and not reader.mute:
                return reader
    raise NoCardError(f"no {' or '.join(order)} card in the readers: {_names(candidates or pool)}")


def find_psam_reader(readers: Sequence[ReaderInfo] | None = None, pattern: str | None = None) -> ReaderInfo:
    """The reader holding a PSAM (by ATR or reader name, with a card in it);
    ``pattern`` narrows the search.  :class:`KeySourceError` ``no_psam``
    (-2201) when there is none."""
    pool = list(readers) if readers is not None else list_readers()
    if pattern is not None:
        pool = _by_pattern(pool, pattern)
    found = [r for r in pool if r.kind == "psam" and r.card_present]
    if not found:
        raise KeySourceError(f"no PSAM among the readers: {_names(pool)}", kind="no_psam")
    return found[0]
