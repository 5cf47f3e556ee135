"""What may enter the journal: masking of ID-number-looking values, no secrets.

Decision (docs/registry.md): social security numbers are masked, not hashed.
Every standalone run of 15 to 19 digits (the last may be X) keeps its first 6
and last character and has the rest replaced by `*`, e.g.
`110102197305211008` -> `110102***********8`. Detail keys naming a PIN, key,
password or secret are refused outright.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from terminal.registry.errors import JournalDetailsForbidden, JournalInputInvalid, RegistryInputError

_ID_RUN = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})([0-9]{8,12})([0-9Xx])(?![0-9A-Za-z])")
_KEY_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
_TOKEN_SPLIT = re.compile(r"[_.\-]+|(?<=[a-z0-9])(?=[A-Z])")
FORBIDDEN_WORDS = ("pin", "key", "password", "passwd", "pwd", "secret", "passcode")
MAX_VALUE = 500


def mask_ssn(value: str) -> str:
    """Mask an ID number: first 6 and last character kept."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 7) + value[-1]


def mask_document(value: str) -> str:
    """Mask any identity-document number: ID-shaped ones as mask_ssn, others keep first and last."""
    if _ID_RUN.fullmatch(value):
        return mask_ssn(value)
    if len(value) <= 2:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask_text(text: str) -> str:
    """`text` with every ID-number-looking run masked."""
    return _ID_RUN.sub(lambda m: mask_ssn(m.group(0)), text)


def is_forbidden_key(name: str) -> bool:
    for token in _TOKEN_SPLIT.split(name):
        word = token.lower()
        if any(word == bad or word.startswith(bad) or word.endswith(bad) for bad in FORBIDDEN_WORDS):
            return True
    return False


def details(raw: Mapping[str, object] | None) -> dict[str, str]:
    """Checked and masked copy of journal details (str keys -> str values)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise JournalInputInvalid("details must be a mapping", detail_zh="附加信息须为键值对")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY_SHAPE.fullmatch(key):
            raise JournalInputInvalid(
                "detail keys must be identifiers of at most 64 characters", detail_zh="附加信息的键须为标识符"
            )
        if is_forbidden_key(key):
            raise JournalDetailsForbidden(key)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int)):
            text = str(value)
        else:
            raise JournalInputInvalid(
                f"detail {key} must be text or an integer", detail_zh=f"附加信息 {key} 须为文本或整数"
            )
        if len(text) > MAX_VALUE:
            raise JournalInputInvalid(
                f"detail {key} longer than {MAX_VALUE} characters", detail_zh=f"附加信息 {key} 过长"
            )
        out[key] = mask_text(text)
    return out


def free_text(
    value: object,
    field: str,
    *,
    limit: int = 200,
    error: type[RegistryInputError] = JournalInputInvalid,
) -> str:
    """A short non-empty free-text field (operator, terminal, note ...), masked."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{field} must be non-empty text", detail_zh=f"{field} 不能为空")
    if len(value) > limit or any(ord(c) < 0x20 for c in value):
        raise error(
            f"{field} longer than {limit} characters or has control characters",
            detail_zh=f"{field} 过长或含控制字符",
        )
    return mask_text(value.strip())
