"""Record values: from holder/card data to the bytes a record file stores.

A record's stored value has its full declared length: text right-padded
with ``20``, binary with ``00``; exact encodings (BCD, card id, digits)
must already have the declared length.  A variable-length record
(``length = 0``) stores 1..max_length bytes unpadded.
"""

from __future__ import annotations

from card_model.errors import InvalidLength
from card_model.holder import CardData, HolderData
from card_model.profile import Profile, RecordSpec

__all__ = ["element_value", "stored_value"]


def stored_value(spec: RecordSpec, raw: bytes, field_name: str = "") -> bytes:
    """Pad or check ``raw`` to what the record file stores for ``spec``."""
    name = field_name or spec.element
    if spec.variable:
        if not 1 <= len(raw) <= spec.max_length:
            raise InvalidLength(name, "wrong_length", f"1..{spec.max_length} bytes")
        return raw
    if len(raw) == spec.length:
        return raw
    pad = spec.pad_byte
    if pad is None or len(raw) > spec.length:
        raise InvalidLength(name, "wrong_length", f"{spec.length} bytes")
    return raw + bytes((pad,)) * (spec.length - len(raw))


def _text(value: str | None, encoding: str) -> bytes | None:
    return None if value is None else value.encode(encoding)


def element_value(element: str, profile: Profile, holder: HolderData, card: CardData) -> bytes | None:
    """The unpadded bytes of a data element on this card, or None when it holds no value."""
    name_field, name_extension = holder.name.split()
    values: dict[str, bytes | None] = {
        "card_id": card.card_id.to_bytes(),
        "card_type": (card.card_type or profile.card_type).encode("ascii"),
        "spec_version": profile.spec_version.encode("ascii"),
        "init_org": card.init_org or profile.init_org,
        "issue_date": card.issue_date.to_bcd(),
        "expiry_date": card.expiry_date.to_bcd(),
        "card_number": card.card_number.value.encode("ascii"),
        "ssn": holder.ssn.value.encode("ascii"),
        "name": name_field.encode("gbk"),
        "name_extension": name_extension.encode("gbk") or None,
        "gender": holder.gender.code.encode("ascii"),
        "ethnicity": holder.ethnicity.to_bcd(),
        "birthplace": holder.birthplace.to_bcd(),
        "birth_date": holder.birth_date.to_bcd(),
        "address": _text(holder.address, "gbk"),
        "phone": _text(holder.phone, "ascii"),
        "occupation": _text(holder.occupation, "gbk"),
        "postcode": _text(holder.postcode, "ascii"),
        "park_ticket": None,
    }
    return values[element]
