"""Key roles, algorithms and the issuer master key set.

An :class:`IssuerKeySet` holds one master key per role (IAK ... KTK) and per
algorithm (SM4 for generation 3, 3DES for generations 1 and 2).  Card keys
are diversified from them with the 8-byte factor ``d`` (the issuer serial,
last 8 bytes of the card identification code): ``sm_crypto.diversify``.

Key sets are stored as TOML (``format = "sscard-issuer-keys"``).  The demo key
set (:func:`demo_key_set`) is derived from a public label with SM3: it is for
demos and tests only and must never protect a real card.  ``repr`` never
shows key bytes.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import tomli_w

from card_model._data import load_data
from card_model.errors import KeySetError
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.diversify import diversify
from sm_crypto.sm3 import sm3

__all__ = [
    "DEMO_LABEL",
    "Algorithm",
    "IssuerKeySet",
    "KeyRole",
    "block_key",
    "demo_key_set",
    "role_for_kid",
]

KEY_SET_FORMAT = "sscard-issuer-keys"
KEY_SET_VERSION = 1
DEMO_LABEL = "sscard demo issuer keys - NOT FOR PRODUCTION"


class Algorithm(StrEnum):
    """Symmetric algorithm of a card key set."""

    SM4 = "sm4"
    TDES = "3des"

    @property
    def block_size(self) -> int:
        return 16 if self is Algorithm.SM4 else 8


class KeyRole(StrEnum):
    """Card key roles of docs/card-os.md §3 (KIDs and texts in ``data/key_roles.toml``)."""

    IAK = "IAK"
    EAK = "EAK"
    RK = "RK"
    AMK = "AMK"
    PRK = "PRK"
    PUK = "PUK"
    LK = "LK"
    PK = "PK"
    TK = "TK"
    KTK = "KTK"

    @property
    def kid(self) -> int:
        return int(_role_row(self.value)["kid"])

    @property
    def text(self) -> str:
        return str(_role_row(self.value)["zh"])

    @property
    def text_en(self) -> str:
        return str(_role_row(self.value)["en"])

    @property
    def psam_usage(self) -> frozenset[str]:
        return frozenset(_role_row(self.value)["psam_usage"])


def _role_row(name: str) -> dict[str, Any]:
    row: dict[str, Any] = load_data("key_roles.toml")["role"][name]
    return row


@cache
def _roles_by_kid() -> dict[int, KeyRole]:
    return {role.kid: role for role in KeyRole}


def role_for_kid(kid: int) -> KeyRole | None:
    """The role with key identifier ``kid`` (01..0A), or None."""
    return _roles_by_kid().get(kid)


def block_key(algorithm: Algorithm, raw: bytes) -> Sm4Key | TdesKey:
    """Wrap raw key bytes in the sm_crypto key object of ``algorithm``."""
    return Sm4Key(raw) if algorithm is Algorithm.SM4 else TdesKey(raw)


@dataclass(frozen=True, slots=True, repr=False)
class IssuerKeySet:
    """Master keys by (algorithm, role); 16 bytes each."""

    masters: Mapping[tuple[Algorithm, KeyRole], bytes]
    demo: bool = False

    def __post_init__(self) -> None:
        for (algorithm, role), raw in self.masters.items():
            if not isinstance(algorithm, Algorithm) or not isinstance(role, KeyRole):
                raise KeySetError("key_set", "wrong_type")
            if not isinstance(raw, bytes) or len(raw) != 16:
                raise KeySetError("key_set", "bad_key", f"{algorithm.value} {role.value}")
        object.__setattr__(self, "masters", dict(self.masters))

    def __repr__(self) -> str:
        algorithms = sorted({a.value for a, _ in self.masters})
        return f"IssuerKeySet(<{len(self.masters)} master keys: {', '.join(algorithms)}>, demo={self.demo})"

    def has(self, algorithm: Algorithm, role: KeyRole) -> bool:
        return (algorithm, role) in self.masters

    def master_bytes(self, algorithm: Algorithm, role: KeyRole) -> bytes:
        raw = self.masters.get((algorithm, role))
        if raw is None:
            raise KeySetError("key_set", "missing", f"{algorithm.value} {role.value}")
        return raw

    def master(self, algorithm: Algorithm, role: KeyRole) -> Sm4Key | TdesKey:
        return block_key(algorithm, self.master_bytes(algorithm, role))

    def card_key(self, algorithm: Algorithm, role: KeyRole, factor: bytes) -> bytes:
        """The per-card key of ``role`` diversified with the 8-byte ``factor``."""
        return diversify(self.master(algorithm, role), factor)

    # -- persistence ---------------------------------------------------------------

    def to_toml(self) -> str:
        doc: dict[str, Any] = {
            "format": KEY_SET_FORMAT,
            "version": KEY_SET_VERSION,
            "demo": self.demo,
        }
        for algorithm in Algorithm:
            section = {
                role.value: raw.hex().upper()
                for (alg, role), raw in sorted(self.masters.items(), key=lambda i: i[0][1].kid)
                if alg is algorithm
            }
            if section:
                doc[algorithm.value] = section
        return tomli_w.dumps(doc)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key set (file mode 0600; it holds master keys)."""
        target = Path(path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_toml())

    @classmethod
    def from_toml(cls, text: str) -> IssuerKeySet:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            raise KeySetError("key_set", "syntax") from None
        if doc.get("format") != KEY_SET_FORMAT or doc.get("version") != KEY_SET_VERSION:
            raise KeySetError("key_set", "bad_format")
        masters: dict[tuple[Algorithm, KeyRole], bytes] = {}
        unknown = set(doc) - {"format", "version", "demo", *(a.value for a in Algorithm)}
        if unknown:
            raise KeySetError("key_set", "unexpected", ", ".join(sorted(unknown)))
        for algorithm in Algorithm:
            section = doc.get(algorithm.value, {})
            if not isinstance(section, dict):
                raise KeySetError("key_set", "not_a_table", algorithm.value)
            for name, value in section.items():
                try:
                    role = KeyRole(name)
                except ValueError:
                    raise KeySetError("key_set", "unexpected", f"{algorithm.value}.{name}") from None
                try:
                    raw = bytes.fromhex(value) if isinstance(value, str) else b""
                except ValueError:
                    raw = b""
                if len(raw) != 16:
                    raise KeySetError("key_set", "bad_key", f"{algorithm.value} {role.value}")
                masters[(algorithm, role)] = raw
        if not masters:
            raise KeySetError("key_set", "missing", "no keys")
        demo = doc.get("demo", False)
        if not isinstance(demo, bool):
            raise KeySetError("key_set", "wrong_type", "demo")
        return cls(masters, demo=demo)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IssuerKeySet:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise KeySetError("key_set", "unreadable") from None
        return cls.from_toml(text)


@cache
def demo_key_set() -> IssuerKeySet:
    """The deterministic demo key set: master = SM3(label | algorithm | role)[:16].

    DEMO AND TESTS ONLY: the derivation is public, so these keys protect nothing.
    """
    masters = {
        (algorithm, role): sm3(f"{DEMO_LABEL}|{algorithm.value}|{role.value}".encode())[:16]
        for algorithm in Algorithm
        for role in KeyRole
    }
    return IssuerKeySet(masters, demo=True)
