"""The key source of a CLI command, chosen by options and configuration.

Kinds: ``psam`` (the PSAM in its reader: ``--psam-reader`` / ``[cli]
psam_reader``, else the first reader holding a PSAM), ``hsm`` (a back-end
security module in steps: the program of ``--hsm-command`` / ``[cli]
hsm_command`` gets each step-1 request as a line and answers it,
:mod:`terminal.keysource.process_hsm`), ``dev_key_file`` and
``software_hsm`` (an ``sscard-issuer-keys`` file: development only, the
terminal logs "NOT FOR PRODUCTION"), ``none``, and ``auto`` (the default:
the PSAM when a reader holds one, else the key file when one is configured).

:class:`CliKeySource` opens the source only when a flow first asks for a
cryptogram, so commands that need no key (read basic, PIN status) never
touch the PSAM, and ``auto`` without a PSAM only fails where a key is really
needed (``KeySourceError`` ``no_psam``, -2201, exit 9).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from apdu.errors import KeySourceError
from card_model.keys import Algorithm, KeyRole
from terminal.keysource.base import KeySource

__all__ = ["KEY_SOURCE_KINDS", "CliKeySource"]

KEY_SOURCE_KINDS = ("auto", "psam", "hsm", "dev_key_file", "software_hsm", "none")


class CliKeySource:
    """A :class:`~terminal.keysource.base.KeySource` opened on first use."""

    def __init__(
        self,
        kind: str,
        *,
        psam_reader: str = "",
        key_file: str = "",
        hsm_command: str = "",
        terminal_number: str = "",
        tracer: Any = None,
        busy: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        if kind not in KEY_SOURCE_KINDS or kind == "none":
            raise KeySourceError(f"unknown key source kind {kind!r}", kind="no_psam")
        self.configured = kind
        self.psam_reader = psam_reader
        self.key_file = key_file
        self.hsm_command = hsm_command
        self._terminal_number = terminal_number
        self._tracer = tracer
        self._busy = busy or nullcontext
        self._source: KeySource | None = None
        self._failure: KeySourceError | None = None

    def __repr__(self) -> str:
        return f"CliKeySource({self.configured}, open={self._source is not None})"

    # -- opening ----------------------------------------------------------------

    def _open_psam(self) -> KeySource:
        from terminal.keysource import PsamKeySource
        from terminal.readers import find_psam_reader

        reader = find_psam_reader(pattern=self.psam_reader or None)
        return PsamKeySource.open(reader.name, tracer=self._tracer)

    def _open_hsm(self) -> KeySource:
        from terminal.errors import HsmUnavailable

        if not self.hsm_command:
            raise HsmUnavailable(
                "key source hsm: no security module command (--hsm-command or [cli] hsm_command)",
                message_zh="未配置加密机程序（--hsm-command 或 [cli] hsm_command）",
            )
        from terminal.keysource import HsmKeySource
        from terminal.keysource.process_hsm import ProcessHsm

        return HsmKeySource(ProcessHsm(self.hsm_command), terminal_number=self._terminal_number)

    def _open_file(self, kind: str) -> KeySource:
        if not self.key_file:
            raise KeySourceError(
                f"key source {kind}: no key file (--key-file or [cli] key_file)", kind="no_psam"
            )
        from card_model.keys import IssuerKeySet
        from terminal.keysource import DevKeyFileKeySource, DevKeysWarning, HsmKeySource, SoftwareHsm

        if kind == "software_hsm":
            return HsmKeySource(
                SoftwareHsm(IssuerKeySet.load(self.key_file)), terminal_number=self._terminal_number
            )
        with warnings.catch_warnings():
            # the key source logs its NOT-FOR-PRODUCTION warning at ERROR level already
            warnings.simplefilter("ignore", DevKeysWarning)
            return DevKeyFileKeySource.load(self.key_file, terminal_number=self._terminal_number)

    def _open_auto(self) -> KeySource:
        try:
            return self._open_psam()
        except KeySourceError:
            if not self.key_file:
                raise KeySourceError(
                    "no key source: no reader holds a PSAM (use --psam-reader, --key-file or "
                    "[cli] key_source)",
                    kind="no_psam",
                ) from None
        return self._open_file("dev_key_file")

    def open(self) -> KeySource:
        """The underlying key source (opened once; a failure is remembered)."""
        if self._source is not None:
            return self._source
        if self._failure is not None:
            raise self._failure
        try:
            with self._busy():
                if self.configured == "psam":
                    self._source = self._open_psam()
                elif self.configured == "auto":
                    self._source = self._open_auto()
                elif self.configured == "hsm":
                    self._source = self._open_hsm()
                else:
                    self._source = self._open_file(self.configured)
        except KeySourceError as exc:
            self._failure = exc
            raise
        return self._source

    @property
    def purse(self) -> Any:
        """The wallet's cryptograms of the opened source (issue 9, terminal/keysource/purse.py)."""
        from terminal.keysource.purse import purse_keys

        return purse_keys(self.open())

    def available(self) -> bool:
        """True when the source opens (``auto`` without a PSAM or key file: False;
        an explicitly configured source that fails raises)."""
        try:
            self.open()
        except KeySourceError:
            if self.configured == "auto":
                return False
            raise
        return True

    # -- KeySource ------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self._source.kind if self._source is not None else self.configured

    @property
    def terminal_number(self) -> str:
        """The source's terminal number; ``""`` when it cannot be opened (the
        national string then has an empty terminal field)."""
        if self._terminal_number:
            return self._terminal_number
        try:
            return self.open().terminal_number
        except KeySourceError:
            return ""

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        return self.open().external_auth(role, algorithm, factor, challenge)

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        return self.open().mac(role, algorithm, factor, iv, message)

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        return self.open().verify_internal_auth(algorithm, factor, challenge, response)

    def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()
