"""The card image: every piece of mutable card state in one dataclass tree.

A :class:`CardImage` holds the record and binary files, the per-card keys
with their try counters, the PIN (value, tries, initial flag), the life
cycle, the SM2 private keys and a ``revision`` that grows with every
committed change.  It serialises to versioned JSON (``to_json`` /
``from_json``, format ``sscard-card-image`` version 1); the card OS commits
it through a :mod:`card_model.store` after each state change.

The image file holds card secrets (keys, PIN, SM2 private keys) exactly as
a card's EEPROM does: stores write it with mode 0600.  ``repr`` never shows
them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from card_model.errors import ImageError
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle

__all__ = [
    "IMAGE_FORMAT",
    "IMAGE_VERSION",
    "BinaryFile",
    "CardImage",
    "KeyState",
    "PinState",
    "RecordFile",
]

IMAGE_FORMAT = "sscard-card-image"
IMAGE_VERSION = 1


@dataclass(slots=True)
class KeyState:
    """One card key with its try counter (docs/card-os.md §3)."""

    kid: int
    role: KeyRole
    algorithm: Algorithm
    version: int
    value: bytes = field(repr=False)
    tries_left: int
    try_limit: int

    @property
    def locked(self) -> bool:
        return self.tries_left <= 0


@dataclass(slots=True)
class PinState:
    """The service password: digits, tries left, limit, and the "initial" flag.

    A blank card whose PIN personalisation has not loaded yet holds ``value
    = ""`` with no tries left (``loaded`` is False)."""

    value: str = field(repr=False)
    tries_left: int
    try_limit: int
    initial: bool

    @property
    def blocked(self) -> bool:
        return self.tries_left <= 0

    @property
    def loaded(self) -> bool:
        """False on a blank card before personalisation loads the PIN (value ``""``)."""
        return bool(self.value)


@dataclass(slots=True)
class RecordFile:
    """A record file: tag -> value bytes (full declared length, padded)."""

    fid: int
    records: dict[int, bytes] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class BinaryFile:
    """A transparent file of fixed size."""

    fid: int
    content: bytearray = field(repr=False)


@dataclass(slots=True)
class CardImage:
    profile: str
    card_id: bytes
    life_cycle: LifeCycle
    pin: PinState
    keys: dict[int, KeyState]
    record_files: dict[int, RecordFile]
    binary_files: dict[int, BinaryFile]
    blocked_from: LifeCycle | None = None
    sm2_sign_key: bytes | None = field(default=None, repr=False)
    sm2_encrypt_key: bytes | None = field(default=None, repr=False)
    revision: int = 0

    @property
    def factor(self) -> bytes:
        """Key diversification factor: last 8 bytes of the card identification code."""
        return self.card_id[8:]

    def copy(self) -> CardImage:
        return copy.deepcopy(self)

    # -- serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": IMAGE_FORMAT,
            "version": IMAGE_VERSION,
            "kind": "card",
            "revision": self.revision,
            "profile": self.profile,
            "card_id": self.card_id.hex().upper(),
            "life_cycle": int(self.life_cycle),
            "blocked_from": None if self.blocked_from is None else int(self.blocked_from),
            "pin": {
                "value": self.pin.value,
                "tries_left": self.pin.tries_left,
                "try_limit": self.pin.try_limit,
                "initial": self.pin.initial,
            },
            "keys": [
                {
                    "kid": k.kid,
                    "role": k.role.value,
                    "algorithm": k.algorithm.value,
                    "version": k.version,
                    "value": k.value.hex().upper(),
                    "tries_left": k.tries_left,
                    "try_limit": k.try_limit,
                }
                for k in sorted(self.keys.values(), key=lambda k: k.kid)
            ],
            "record_files": {
                f"{fid:04X}": {f"{tag:02X}": value.hex().upper() for tag, value in sorted(rf.records.items())}
                for fid, rf in sorted(self.record_files.items())
            },
            "binary_files": {
                f"{fid:04X}": bytes(bf.content).hex().upper() for fid, bf in sorted(self.binary_files.items())
            },
            "sm2": {
                "sign_private": None if self.sm2_sign_key is None else self.sm2_sign_key.hex().upper(),
                "encrypt_private": None
                if self.sm2_encrypt_key is None
                else self.sm2_encrypt_key.hex().upper(),
            },
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False).encode("utf-8")

    @classmethod
    def from_dict(cls, doc: Any) -> CardImage:
        if not isinstance(doc, dict):
            raise ImageError("image", "not_a_table")
        if (
            doc.get("format") != IMAGE_FORMAT
            or doc.get("version") != IMAGE_VERSION
            or doc.get("kind") != "card"
        ):
            raise ImageError("image", "bad_format")
        try:
            pin = doc["pin"]
            image = cls(
                profile=_str(doc["profile"]),
                card_id=_hex(doc["card_id"], 16),
                life_cycle=LifeCycle(_int(doc["life_cycle"])),
                blocked_from=None if doc["blocked_from"] is None else LifeCycle(_int(doc["blocked_from"])),
                pin=PinState(
                    value=_pin_digits(pin["value"]),
                    tries_left=_int(pin["tries_left"]),
                    try_limit=_int(pin["try_limit"]),
                    initial=_bool(pin["initial"]),
                ),
                keys={},
                record_files={},
                binary_files={},
                sm2_sign_key=_opt_hex(doc["sm2"]["sign_private"], 32),
                sm2_encrypt_key=_opt_hex(doc["sm2"]["encrypt_private"], 32),
                revision=_int(doc["revision"]),
            )
            for row in doc["keys"]:
                key = KeyState(
                    kid=_int(row["kid"]),
                    role=KeyRole(row["role"]),
                    algorithm=Algorithm(row["algorithm"]),
                    version=_int(row["version"]),
                    value=_hex(row["value"], 16),
                    tries_left=_int(row["tries_left"]),
                    try_limit=_int(row["try_limit"]),
                )
                if key.kid in image.keys or not 0 <= key.tries_left <= key.try_limit:
                    raise ImageError("image", "inconsistent", f"key {key.kid:02X}")
                image.keys[key.kid] = key
            for fid_text, records in doc["record_files"].items():
                fid = int(fid_text, 16)
                image.record_files[fid] = RecordFile(
                    fid, {int(tag, 16): _hex(value, None) for tag, value in records.items()}
                )
            for fid_text, content in doc["binary_files"].items():
                fid = int(fid_text, 16)
                image.binary_files[fid] = BinaryFile(fid, bytearray(_hex(content, None)))
        except ImageError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ImageError("image", "inconsistent") from None
        if not 0 <= image.pin.tries_left <= image.pin.try_limit:
            raise ImageError("image", "inconsistent", "pin tries")
        return image

    @classmethod
    def from_json(cls, data: bytes | str) -> CardImage:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ImageError("image", "syntax") from None
        return cls.from_dict(doc)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImageError("image", "wrong_type")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImageError("image", "wrong_type")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ImageError("image", "wrong_type")
    return value


def _pin_digits(value: Any) -> str:
    text = _str(value)
    if text and not (text.isascii() and text.isdigit()):
        raise ImageError("image", "inconsistent", "pin")
    return text


def _hex(value: Any, length: int | None) -> bytes:
    try:
        raw = bytes.fromhex(_str(value))
    except ValueError:
        raise ImageError("image", "not_hex") from None
    if length is not None and len(raw) != length:
        raise ImageError("image", "wrong_length")
    return raw


def _opt_hex(value: Any, length: int) -> bytes | None:
    return None if value is None else _hex(value, length)
