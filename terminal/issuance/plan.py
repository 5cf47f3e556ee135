"""What personalisation writes for an order: keys in load order, records, the PIN.

* Keys: the write key (AMK) first — every later write is MACed with it and
  a card holding it can always be scrapped — then the other keys of the
  profile in profile order; the keys of initialisation (KTK) are never
  written.
* Records: every record of the profile's record files that the order fills
  (``card_model.records.element_value``), except the initialisation
  elements, as the card stores them (padded, ``stored_value``).
* PIN: the profile's initial-PIN rule on the holder's SSN, as a packed-BCD block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apdu.elements import encode_pin
from card_model.holder import CardData, HolderData
from card_model.keys import KeyRole
from card_model.profile import FileSpec, Profile, RecordSpec
from card_model.records import element_value, stored_value
from terminal.flows.generic import record_check

__all__ = ["RecordWrite", "key_roles", "pin_block", "record_writes"]


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """One record to write: file, record spec and the value as stored."""

    file: FileSpec
    record: RecordSpec
    stored: bytes = field(repr=False)

    @property
    def tag(self) -> int:
        return self.record.tag

    def check(self, card_id: str) -> str:
        """The journal check of this value (terminal.flows.generic.record_check)."""
        return record_check(card_id, self.tag, self.stored)

    @property
    def key_item(self) -> bool:
        """A record of a file never updated after issuance (key items, card facts)."""
        return self.file.update.kind == "never"


def key_roles(profile: Profile) -> tuple[KeyRole, ...]:
    rules = profile.personalisation
    loadable = [spec.role for spec in profile.keys if spec.role not in rules.initial_roles]
    first = [role for role in loadable if role is rules.write_role]
    return tuple(first + [role for role in loadable if role is not rules.write_role])


def record_writes(profile: Profile, holder: HolderData, card: CardData) -> tuple[RecordWrite, ...]:
    out: list[RecordWrite] = []
    initialised = profile.personalisation.initialised
    for spec in profile.files:
        if spec.kind != "records":
            continue
        for record in spec.records:
            if record.element in initialised:
                continue
            raw = element_value(record.element, profile, holder, card)
            if raw is not None:
                out.append(RecordWrite(spec, record, stored_value(record, raw)))
    return tuple(out)


def pin_block(profile: Profile, holder: HolderData) -> bytes:
    """The initial PIN block (profile rule ``ssn_last6``; an X stands for 0)."""
    return encode_pin(holder.ssn.initial_pin)
