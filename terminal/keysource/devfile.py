"""Development key source: issuer master keys from a TOML key file.

The file is the ``sscard-issuer-keys`` format of
:class:`card_model.keys.IssuerKeySet` (``[sm4]`` / ``[3des]`` tables of
role = 32 hex digits).  Master keys in a plain file protect nothing: every
construction warns loudly (a :class:`DevKeysWarning` and an ERROR-level log
record).  For development, the demo and tests only.
"""

from __future__ import annotations

import logging
import os
import warnings

from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from terminal._data import load_data
from terminal.keysource.engine import MasterKeyEngine
from terminal.keysource.purse import LocalPurseKeys

__all__ = ["DevKeyFileKeySource", "DevKeysWarning"]

log = logging.getLogger("sscard.keysource")


class DevKeysWarning(UserWarning):
    """A development key file is in use (not for production)."""


class DevKeyFileKeySource:
    """:class:`~terminal.keysource.base.KeySource` over master keys in memory."""

    kind = "dev_key_file"

    def __init__(self, key_set: IssuerKeySet, *, source: str = "<memory>", terminal_number: str = "") -> None:
        self._engine = MasterKeyEngine(key_set)
        # the wallet's cryptograms (issue 9, terminal/keysource/purse.py)
        self.purse = LocalPurseKeys(key_set)
        self._terminal_number = terminal_number
        self.source = source
        texts = load_data("keysource")["dev_key_file"]
        english = str(texts["warning_en"]).format(source=source)
        chinese = str(texts["warning_zh"]).format(source=source)
        log.error("%s / %s", english, chinese)
        warnings.warn(DevKeysWarning(f"{english} / {chinese}"), stacklevel=2)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, terminal_number: str = "") -> DevKeyFileKeySource:
        """Read a key file (raises ``card_model.errors.KeySetError`` when unusable)."""
        return cls(IssuerKeySet.load(path), source=os.fspath(path), terminal_number=terminal_number)

    def __repr__(self) -> str:
        return f"DevKeyFileKeySource({self.source!r}, NOT FOR PRODUCTION)"

    @property
    def terminal_number(self) -> str:
        return self._terminal_number

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        return self._engine.external_auth(role, algorithm, factor, challenge)

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        return self._engine.mac(role, algorithm, factor, iv, message)

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        return self._engine.verify_internal_auth(algorithm, factor, challenge, response)

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        return self._engine.write_key_body(algorithm, factor, iv, p1, p2, pin_block)

    def close(self) -> None:
        return None
