"""Validation of the card data elements the registry stores.

A small stand-in for `card_model.values` (same job, same names where they
overlap): once card_model provides these validators, this module's callers
switch to it and this module goes. Every failure raises a specific registry
error whose text never contains the rejected social security number.
"""

from __future__ import annotations

import re
from datetime import date

from terminal.registry.errors import InvalidCardData, InvalidCardId, InvalidHolderData, InvalidSsn

RID = "D156000005"
_SSN_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_SSN_CHECK = "10X98765432"
_SSN_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_CARD_ID_SHAPE = re.compile(r"[0-9A-F]{32}")
_CARD_NUMBER_SHAPE = re.compile(r"[0-9A-Z]{9}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
GENDERS = frozenset({"0", "1", "2", "9"})


def ssn_check_digit(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) for 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _SSN_WEIGHTS, strict=True))
    return _SSN_CHECK[total % 11]


def ssn(value: object) -> str:
    """An 18-character social security (citizen ID) number; check digit X upper case only."""
    if not isinstance(value, str):
        raise InvalidSsn("not text", detail_zh="不是文本")
    if len(value) != 18:
        raise InvalidSsn(
            f"{len(value)} characters instead of 18", detail_zh=f"长度为{len(value)}位，应为18位"
        )
    if not _SSN_SHAPE.fullmatch(value):
        raise InvalidSsn(
            "must be 17 digits followed by a digit or an upper-case X",
            detail_zh="应为17位数字加1位数字或大写X",
        )
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidSsn("birth date part is not a real date", detail_zh="出生日期部分无效") from None
    if ssn_check_digit(value[:17]) != value[17]:
        raise InvalidSsn("check digit does not match (GB 11643)", detail_zh="校验码错误") from None
    return value


def card_id(value: object) -> str:
    """Card identification code: 16 bytes as 32 hex digits, BCD region code, RID D156000005."""
    if not isinstance(value, str):
        raise InvalidCardId("not text", detail_zh="不是文本")
    text = value.strip().upper()
    if not _CARD_ID_SHAPE.fullmatch(text):
        raise InvalidCardId(
            "must be 32 hexadecimal digits (16 bytes)", detail_zh="应为32位十六进制数字（16字节）"
        )
    if not text[:6].isdigit():
        raise InvalidCardId(
            "region code (bytes 0..2) is not BCD", detail_zh="地区代码（第0至2字节）不是BCD码"
        )
    if text[6:16] != RID:
        raise InvalidCardId(f"bytes 3..7 must be the RID {RID}", detail_zh=f"第3至7字节应为RID {RID}")
    return text


def card_number(value: object) -> str:
    """Card number printed on the card: 9 ASCII characters (digits, upper-case letters)."""
    if not isinstance(value, str) or not _CARD_NUMBER_SHAPE.fullmatch(value):
        raise InvalidCardData(
            "card number must be 9 digits or upper-case letters, e.g. X00000019",
            detail_zh="卡号应为9位数字或大写字母，例如 X00000019",
        )
    return value


def generation(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, 2, 3):
        raise InvalidCardData("generation must be 1, 2 or 3", detail_zh="卡的代别应为1、2或3")
    return value


def date_value(value: object, field: str) -> date:
    """A date given as `date` or as text `YYYY-MM-DD`."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidCardData(f"{field} must be a date YYYY-MM-DD", detail_zh=f"{field} 应为日期 YYYY-MM-DD")


def validity(issue: object, expiry: object) -> tuple[date, date]:
    issue_d = date_value(issue, "issue_date")
    expiry_d = date_value(expiry, "expiry_date")
    if expiry_d <= issue_d:
        raise InvalidCardData("expiry date must be after the issue date", detail_zh="有效期须晚于发卡日期")
    return issue_d, expiry_d


def holder_name(value: object) -> str:
    """Holder name: non-empty, encodable in GBK as the card stores it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidHolderData("name must be non-empty text", detail_zh="姓名不能为空")
    if len(value) > 100 or any(ord(c) < 0x20 for c in value):
        raise InvalidHolderData(
            "name too long or contains control characters", detail_zh="姓名过长或含控制字符"
        )
    try:
        value.encode("gbk")
    except UnicodeEncodeError:
        raise InvalidHolderData(
            "name cannot be encoded in GBK", detail_zh="姓名含GBK无法表示的字符"
        ) from None
    return value.strip()


def gender(value: object) -> str | None:
    """GB/T 2261.1 code: 0 unknown, 1 male, 2 female, 9 unstated."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in GENDERS:
        raise InvalidHolderData(
            "gender must be one of 0, 1, 2, 9 (GB/T 2261.1)", detail_zh="性别代码应为0、1、2或9"
        )
    return value
