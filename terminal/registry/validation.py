"""The registry's input checks, done by `card_model.values`.

The card model owns the validation of holder and card data (GB 11643 check
character, card identification code, card number, dates, names, sex codes,
the 15 partner banks); this module calls it and turns a
`card_model.errors.CardModelError` into the registry's own error types, which
the registry API promises (`InvalidSsn`, `InvalidCardId`, `InvalidCardData`,
`InvalidHolderData`, `UnknownBank`). Neither kind of error ever carries the
rejected value. What the card model does not know (the card generation, the
order of issue and expiry, the width of the registry's name column) is checked
here.
"""

from __future__ import annotations

from datetime import date

from card_model.errors import CardModelError
from card_model.values import (
    Bank,
    BcdDate,
    CardIdCode,
    CardNumber,
    Gender,
    Name,
    Ssn,
    partner_banks,
)
from terminal.registry.errors import (
    InvalidCardData,
    InvalidCardId,
    InvalidHolderData,
    InvalidSsn,
    RegistryInputError,
    UnknownBank,
)

__all__ = [
    "bank",
    "card_id",
    "card_number",
    "date_value",
    "gender",
    "generation",
    "holder_name",
    "ssn",
    "validity",
]

GENERATIONS = (1, 2, 3)
#: Length of the `holders.name` column (schema.py builds it from this; migration 0001).
NAME_COLUMN_CHARS = 100


def _texts(exc: CardModelError, *, keep_field: bool) -> tuple[str, str]:
    """English and Chinese detail of a card-model error; without the field's
    name when the registry's own message already names it."""
    en, zh = str(exc), exc.message_zh
    if not keep_field and exc.field:
        label = CardModelError(exc.field)  # the field's name alone: "<field>: " / "<字段>"
        en = en.removeprefix(str(label)).strip() or en
        zh = zh.removeprefix(label.message_zh) or zh
    return en, zh


def _refuse(
    error: type[RegistryInputError], exc: CardModelError, *, keep_field: bool = True
) -> RegistryInputError:
    en, zh = _texts(exc, keep_field=keep_field)
    return error(en, detail_zh=zh)


def ssn(value: object) -> str:
    """An 18-character social security number (GB 11643 check character, upper-case X)."""
    try:
        return Ssn(value).value  # type: ignore[arg-type]
    except CardModelError as exc:
        raise _refuse(InvalidSsn, exc, keep_field=False) from None


def card_id(value: object) -> str:
    """A card identification code as 32 upper-case hex digits (lower case accepted)."""
    try:
        return CardIdCode.from_hex(value).hex()
    except CardModelError as exc:
        raise _refuse(InvalidCardId, exc, keep_field=False) from None


def card_number(value: object) -> str:
    """The printed card number: 9 digits or upper-case letters."""
    try:
        return CardNumber(value).value  # type: ignore[arg-type]
    except CardModelError as exc:
        raise _refuse(InvalidCardData, exc) from None


def generation(value: object) -> int:
    """Card generation 1, 2 or 3 (an int, not a bool or text)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in GENERATIONS:
        raise InvalidCardData("generation must be 1, 2 or 3", detail_zh="卡的代别应为1、2或3")
    return value


def date_value(value: object, field: str) -> date:
    """A date given as `date`, `YYYY-MM-DD` or `YYYYMMDD` (years 1900..2099)."""
    try:
        return BcdDate.parse(value, field).value
    except CardModelError as exc:
        raise _refuse(InvalidCardData, exc) from None


def validity(issue: object, expiry: object) -> tuple[date, date]:
    """Issue and expiry dates; the expiry must come after the issue."""
    issue_d = date_value(issue, "issue_date")
    expiry_d = date_value(expiry, "expiry_date")
    if expiry_d <= issue_d:
        raise InvalidCardData("expiry date must be after the issue date", detail_zh="有效期须晚于发卡日期")
    return issue_d, expiry_d


def holder_name(value: object) -> str:
    """The holder's name as the card stores it (GBK, no control characters),
    stripped, and short enough for the registry's name column."""
    try:
        name = Name(value).value  # type: ignore[arg-type]
    except CardModelError as exc:
        raise _refuse(InvalidHolderData, exc) from None
    if len(name) > NAME_COLUMN_CHARS:
        raise InvalidHolderData(
            f"name longer than {NAME_COLUMN_CHARS} characters", detail_zh=f"姓名超过{NAME_COLUMN_CHARS}个字符"
        )
    return name


def gender(value: object) -> str | None:
    """GB/T 2261.1 sex code (0, 1, 2, 9) or None."""
    if value is None:
        return None
    try:
        return Gender(value).code  # type: ignore[arg-type]
    except CardModelError as exc:
        raise _refuse(InvalidHolderData, exc) from None


def bank(value: object) -> Bank:
    """One of the 15 partner banks, named by code, English or Chinese name or alias."""
    try:
        return Bank.resolve(value)
    except CardModelError:
        shown = value if isinstance(value, str) and len(value) <= 60 else "?"
        raise UnknownBank(
            f"{shown!r}; one of {', '.join(b.code for b in partner_banks())}",
            detail_zh=f"“{shown}”",
        ) from None
