"""The 15 partner banks (data/banks.toml): lookup by code or name."""

from __future__ import annotations

from functools import lru_cache

from terminal.registry import catalog
from terminal.registry.catalog import Bank
from terminal.registry.errors import UnknownBank


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=1)
def _index() -> dict[str, Bank]:
    index: dict[str, Bank] = {}
    for bank in catalog.banks():
        for name in (bank.code, bank.name_en, bank.name_zh, *bank.aliases):
            index[_key(name)] = bank
    return index


def resolve(text: object) -> Bank:
    """The partner bank named by `text` (code, English or Chinese name, alias)."""
    bank = _index().get(_key(text)) if isinstance(text, str) else None
    if bank is None:
        shown = text if isinstance(text, str) and len(text) <= 60 else "?"
        raise UnknownBank(
            f"{shown!r}; one of {', '.join(b.code for b in catalog.banks())}",
            detail_zh=f"“{shown}”",
        )
    return bank
