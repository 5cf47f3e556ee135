"""The service's key source and trust anchors, built from the configuration
(the journal and the registry gate: :mod:`terminal.service.registry_gate`).

:class:`KeySourceProvider` opens the configured key source lazily and keeps
it: ``psam`` (the PSAM in its reader, re-opened after it was pulled or reset:
:class:`ReopeningKeySource`),
``hsm`` (a back-end security module behind the program of
``key_source.hsm_command``, :class:`terminal.keysource.process_hsm.ProcessHsm`,
the step protocol over pipes as ``sscard --key-source hsm``),
``dev_key_file`` and ``software_hsm`` (a development key file, never for
production: the terminal logs and warns), or ``none``.  The national
``*_HSM_Step`` functions never use it: they take the outside module's
answers (:class:`terminal.keysource.HsmConversation`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from apdu.errors import KeySourceError, SscardError, TransportError
from card_model.errors import CardModelError
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from sm_crypto.errors import CryptoError
from sm_crypto.x509 import Sm2Certificate, load_pem_certificates
from terminal.keysource.base import CardKeys, KeySource
from terminal.service.backend import CardBackend
from terminal.service.config import ServiceConfig
from terminal.service.errors import ServiceConfigError

__all__ = ["KeySourceProvider", "ReopeningKeySource", "load_trust_anchors"]

log = logging.getLogger("sscard.service.keys")


T = TypeVar("T")


class ReopeningKeySource:
    """A PSAM key source that survives the PSAM being reset or re-inserted.

    Another program (or another service instance) may reset the PSAM between
    two operations; its next transaction then fails with a transport error
    (e.g. ``card_reset``).  Every PSAM operation is self-contained (INIT FOR
    DESCRYPT and CIPHER in one transaction), so the source is re-opened and
    the operation tried once more; a PSAM that cannot be re-opened is
    ``no_psam`` (-2201)."""

    kind = "psam"

    def __init__(self, opener: Callable[[], KeySource]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._source: KeySource = opener()

    @property
    def terminal_number(self) -> str:
        return self._source.terminal_number

    def _call(self, operation: Callable[[KeySource], T]) -> T:
        with self._lock:
            source = self._source
            try:
                return operation(source)
            except TransportError as exc:
                log.info("PSAM: %s; re-opening it", exc.error_id)
            self._close(source)
            try:
                self._source = self._opener()
            except SscardError as exc:
                raise KeySourceError(
                    f"the PSAM cannot be re-opened ({exc.error_id})", kind="no_psam"
                ) from exc
            try:
                return operation(self._source)
            except TransportError as exc:
                raise KeySourceError(f"the PSAM does not answer ({exc.error_id})", kind="no_psam") from exc

    @property
    def purse(self) -> Any:
        """The wallet's cryptograms of the current PSAM (issue 9, terminal/keysource/purse.py)."""
        from terminal.keysource.purse import purse_keys

        return purse_keys(self._source)

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        return self._call(lambda s: s.external_auth(role, algorithm, factor, challenge))

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        return self._call(lambda s: s.mac(role, algorithm, factor, iv, message))

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        return self._call(lambda s: s.verify_internal_auth(algorithm, factor, challenge, response))

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        """WRITE KEY bodies for issuance (terminal.keysource.loading), from the PSAM."""
        return self._call(lambda s: CardKeys(s, algorithm, factor).write_key_body(iv, p1, p2, pin_block))

    @staticmethod
    def _close(source: KeySource) -> None:
        try:
            source.close()
        except SscardError as err:
            log.debug("closing the PSAM: %s", err.error_id)

    def close(self) -> None:
        with self._lock:
            self._close(self._source)


class KeySourceProvider:
    """See the module docstring."""

    def __init__(self, config: ServiceConfig, backend: CardBackend) -> None:
        self.kind = config.key_source
        self._config = config
        self._backend = backend
        self._source: KeySource | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def get(self) -> KeySource | None:
        """The key source, or None when it cannot be opened now (flows that need
        a key then report the key source error, -2201 for a missing PSAM)."""
        if self.kind == "none":
            return None
        with self._lock:
            if self._source is None:
                try:
                    self._source = self._open()
                    self.last_error = None
                except SscardError as exc:
                    self.last_error = exc.error_id
                    log.info("key source %s not available: %s", self.kind, exc.error_id)
                    return None
            return self._source

    def _open(self) -> KeySource:
        if self.kind == "psam":
            return ReopeningKeySource(lambda: self._backend.open_psam(self._config.psam_reader))
        if self.kind == "hsm":
            return self._open_process_hsm()
        path = self._config.key_path
        assert path is not None
        from terminal.keysource import DevKeyFileKeySource, HsmKeySource, SoftwareHsm

        try:
            if self.kind == "dev_key_file":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return DevKeyFileKeySource.load(path, terminal_number=self._config.terminal_number)
            keys = IssuerKeySet.load(path)
        except CardModelError as exc:
            raise ServiceConfigError(f"key_source.path: {exc.error_id}") from None
        log.error("key source software_hsm over a key file: development only, NOT FOR PRODUCTION")
        return HsmKeySource(SoftwareHsm(keys), terminal_number=self._config.terminal_number)

    def _open_process_hsm(self) -> KeySource:
        """The security module program of ``key_source.hsm_command``, started once and
        kept; it is started again after it ended or stopped answering."""
        from terminal.keysource import HsmKeySource
        from terminal.keysource.process_hsm import ProcessHsm

        module = ProcessHsm(self._config.hsm_command)
        log.info("key source hsm: security module program %s started", module.argv[0])
        return HsmKeySource(module, terminal_number=self._config.terminal_number)

    def invalidate(self, exc: BaseException | None = None) -> None:
        """Drop the open source (after a missing PSAM or a security module program
        that ended); the next :meth:`get` re-opens."""
        from terminal.errors import HsmUnavailable

        if (
            isinstance(exc, KeySourceError)
            and not isinstance(exc, HsmUnavailable)
            and exc.kind not in ("no_psam", None)
        ):
            return
        with self._lock:
            source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except SscardError as err:
                log.debug("closing the key source: %s", err.error_id)

    @property
    def terminal_number(self) -> str:
        if self._config.terminal_number:
            return self._config.terminal_number
        source = self._source
        return source.terminal_number if source is not None else ""

    def status(self) -> dict[str, Any]:
        source = self.get()
        return {
            "kind": self.kind,
            "present": source is not None if self.kind != "none" else False,
            "terminal_number": self.terminal_number,
            "error": None if source is not None or self.kind == "none" else self.last_error,
        }

    def close(self) -> None:
        self.invalidate()


def load_trust_anchors(paths: tuple[Path, ...]) -> tuple[Sm2Certificate, ...]:
    """CA certificates (PEM with one or more certificates, or DER) for card authenticity."""
    anchors: list[Sm2Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ServiceConfigError(f"terminal.trust_anchors: cannot read {path} ({exc.strerror})") from None
        try:
            if b"-----BEGIN" in data:
                anchors.extend(load_pem_certificates(data))
            else:
                anchors.append(Sm2Certificate.from_der(data))
        except (CryptoError, SscardError, ValueError) as exc:
            raise ServiceConfigError(
                f"terminal.trust_anchors: {path} is not a certificate ({type(exc).__name__})"
            ) from None
    return tuple(anchors)
