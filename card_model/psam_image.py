"""The PSAM image: terminal number and master keys with usage masks.

Master keys sit under KIDs ``0x01-0x0A`` (SM4, generation 3) and
``0x21-0x2A`` (3DES, generations 1 and 2), one per card-key role
(docs/card-os.md §9).  ``usage`` is a subset of ``ext``, ``mac``, ``int``,
``wrap`` and the wallet's ``load``, ``purchase``, ``tac`` (§12); a command
needing another usage answers 6985.  The image
serialises to JSON (format ``sscard-psam-image`` version 1, kind ``psam``)
and is kept by the same :mod:`card_model.store` as card images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from card_model.errors import ImageError
from card_model.keys import Algorithm, IssuerKeySet, KeyRole

__all__ = ["PSAM_USAGES", "TDES_KID_OFFSET", "PsamImage", "PsamKey", "psam_kid"]

PSAM_FORMAT = "sscard-psam-image"
PSAM_VERSION = 1
TDES_KID_OFFSET = 0x20
PSAM_USAGES = frozenset({"ext", "mac", "int", "wrap", "load", "purchase", "tac"})


def psam_kid(role: KeyRole, algorithm: Algorithm) -> int:
    """PSAM key identifier of a role's master key: the card KID, +0x20 for 3DES."""
    return role.kid + (TDES_KID_OFFSET if algorithm is Algorithm.TDES else 0)


@dataclass(slots=True)
class PsamKey:
    kid: int
    role: KeyRole
    algorithm: Algorithm
    value: bytes = field(repr=False)
    usage: frozenset[str]
    version: int = 1


@dataclass(slots=True)
class PsamImage:
    terminal_number: bytes
    keys: dict[int, PsamKey]
    revision: int = 0

    def __post_init__(self) -> None:
        if len(self.terminal_number) != 6 or not self.terminal_number.hex().isdigit():
            raise ImageError("psam", "inconsistent", "terminal number: 6 bytes BCD")

    @classmethod
    def from_key_set(
        cls,
        key_set: IssuerKeySet,
        terminal_number: str,
        *,
        usage: Mapping[KeyRole, Iterable[str]] | None = None,
        algorithms: Iterable[Algorithm] = (Algorithm.SM4, Algorithm.TDES),
    ) -> PsamImage:
        """Load every master key of ``key_set`` for ``algorithms``; usage per role
        from ``usage`` or the role table (``card_model/data/key_roles.toml``)."""
        if len(terminal_number) != 12 or not (terminal_number.isascii() and terminal_number.isdigit()):
            raise ImageError("psam", "inconsistent", "terminal number: 12 digits")
        keys: dict[int, PsamKey] = {}
        for algorithm in algorithms:
            for role in KeyRole:
                if not key_set.has(algorithm, role):
                    continue
                kid = psam_kid(role, algorithm)
                chosen = frozenset(usage[role]) if usage and role in usage else role.psam_usage
                if not chosen <= PSAM_USAGES:
                    raise ImageError("psam", "inconsistent", f"usage of {role.value}")
                keys[kid] = PsamKey(kid, role, algorithm, key_set.master_bytes(algorithm, role), chosen)
        return cls(bytes.fromhex(terminal_number), keys)

    @property
    def terminal_number_text(self) -> str:
        return self.terminal_number.hex()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PSAM_FORMAT,
            "version": PSAM_VERSION,
            "kind": "psam",
            "revision": self.revision,
            "terminal_number": self.terminal_number.hex(),
            "keys": [
                {
                    "kid": k.kid,
                    "role": k.role.value,
                    "algorithm": k.algorithm.value,
                    "version": k.version,
                    "value": k.value.hex().upper(),
                    "usage": sorted(k.usage),
                }
                for k in sorted(self.keys.values(), key=lambda k: k.kid)
            ],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1).encode("utf-8")

    @classmethod
    def from_dict(cls, doc: Any) -> PsamImage:
        if not isinstance(doc, dict):
            raise ImageError("psam", "not_a_table")
        if (
            doc.get("format") != PSAM_FORMAT
            or doc.get("version") != PSAM_VERSION
            or doc.get("kind") != "psam"
        ):
            raise ImageError("psam", "bad_format")
        try:
            keys: dict[int, PsamKey] = {}
            for row in doc["keys"]:
                usage = frozenset(row["usage"])
                value = bytes.fromhex(row["value"])
                kid = row["kid"]
                if (
                    not usage <= PSAM_USAGES
                    or len(value) != 16
                    or kid in keys
                    or isinstance(kid, bool)
                    or not isinstance(kid, int)
                ):
                    raise ImageError("psam", "inconsistent", "key")
                keys[kid] = PsamKey(
                    kid, KeyRole(row["role"]), Algorithm(row["algorithm"]), value, usage, int(row["version"])
                )
            revision = doc["revision"]
            if isinstance(revision, bool) or not isinstance(revision, int):
                raise ImageError("psam", "wrong_type", "revision")
            return cls(bytes.fromhex(doc["terminal_number"]), keys, revision)
        except ImageError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ImageError("psam", "inconsistent") from None

    @classmethod
    def from_json(cls, data: bytes | str) -> PsamImage:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ImageError("psam", "syntax") from None
        return cls.from_dict(doc)
