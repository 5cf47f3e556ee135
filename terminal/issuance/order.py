"""The issuance order: who gets a card and the card facts the issuer chooses.

The holder's data (EF06 key items, EF07 contact data) and the card facts
the issuer decides at the counter (card number, issue and expiry date,
partner bank) come from the counter system or the holder TOML of
interfaces.md (``[holder]`` / ``[card]``).  The card identification code
(region code and issuer serial) belongs to the blank card: it was written
at initialisation, so ``[card] region_code`` is only checked against it and
a ``serial`` is refused.  ``repr`` never shows holder data.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from card_model.errors import HolderFileError, InvalidValue
from card_model.holder import CardData, HolderData
from card_model.values import Bank, BcdDate, CardIdCode, CardNumber, RegionCode
from sm_crypto.sm3 import sm3
from terminal.errors import CardDataMismatch

__all__ = ["IssuanceOrder"]

ORDER_CARD_FIELDS = frozenset({"card_number", "issue_date", "expiry_date", "bank", "region_code"})
CHECK_BYTES = 4


@dataclass(frozen=True, slots=True)
class IssuanceOrder:
    """What to personalise; validated on construction (card_model value errors)."""

    holder: HolderData = field(repr=False)
    card_number: CardNumber
    issue_date: BcdDate
    expiry_date: BcdDate
    bank: Bank
    region_code: RegionCode | None = None

    def __post_init__(self) -> None:
        if self.expiry_date <= self.issue_date:
            raise InvalidValue("expiry_date", "expiry_before_issue")

    @classmethod
    def from_mapping(cls, holder: Mapping[str, Any], card: Mapping[str, Any]) -> IssuanceOrder:
        """From the JSON / TOML field names of interfaces.md."""
        unknown = set(card) - ORDER_CARD_FIELDS
        if unknown:
            raise HolderFileError(
                "holder_file", "unexpected", f"[card] {', '.join(sorted(unknown))} (set by the blank card)"
            )
        for key in ("card_number", "issue_date", "expiry_date", "bank"):
            if key not in card:
                raise InvalidValue(key, "missing")
        region = card.get("region_code")
        return cls(
            holder=HolderData.from_mapping(holder),
            card_number=CardNumber(card["card_number"]),
            issue_date=BcdDate.parse(card["issue_date"], "issue_date"),
            expiry_date=BcdDate.parse(card["expiry_date"], "expiry_date"),
            bank=Bank.resolve(card["bank"]),
            region_code=None if region is None else RegionCode.for_issuance(str(region).strip()),
        )

    @classmethod
    def from_toml(cls, text: str) -> IssuanceOrder:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HolderFileError("holder_file", "syntax", f"line {getattr(exc, 'lineno', '?')}") from None
        unknown = set(doc) - {"holder", "card"}
        if unknown:
            raise HolderFileError("holder_file", "unexpected", ", ".join(sorted(unknown)))
        holder, card = doc.get("holder"), doc.get("card")
        if not isinstance(holder, dict):
            raise HolderFileError("holder_file", "missing", "[holder]")
        if not isinstance(card, dict):
            raise HolderFileError("holder_file", "missing", "[card]")
        return cls.from_mapping(holder, card)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IssuanceOrder:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise HolderFileError("holder_file", "unreadable") from None
        return cls.from_toml(text)

    def card_data(self, card_id: CardIdCode) -> CardData:
        """The card facts for the blank card ``card_id`` (its region and serial)."""
        if self.region_code is not None and self.region_code.code != card_id.region.code:
            raise CardDataMismatch("the order's region code differs from the blank card's")
        return CardData(
            card_number=self.card_number,
            region_code=card_id.region,
            issue_date=self.issue_date,
            expiry_date=self.expiry_date,
            bank=self.bank,
            serial=card_id.serial,
        )

    def check(self) -> str:
        """A short check of the whole order (hex), for the journal: the same
        order gives the same check, and it reveals nothing useful about the holder."""
        canonical = json.dumps(
            {
                "holder": self.holder.to_mapping(),
                "card_number": self.card_number.value,
                "issue_date": self.issue_date.iso(),
                "expiry_date": self.expiry_date.iso(),
                "bank": self.bank.name_en,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return sm3(canonical.encode("utf-8"))[:CHECK_BYTES].hex().upper()

    def public_dict(self) -> dict[str, str]:
        """The card facts (no holder data)."""
        return {
            "card_number": self.card_number.value,
            "issue_date": self.issue_date.iso(),
            "expiry_date": self.expiry_date.iso(),
            "bank": self.bank.name_en,
        }
