"""The software security module: the HSM step protocol over an issuer key set.

For tests and small sites.  It speaks exactly the text protocol of
:mod:`terminal.keysource.hsm` (``process(step1) -> answer``), so a site can
replace it with a hardware module without touching the flows.  Master keys
stay inside; answers are cryptograms, MACs, ``0|`` or a national error code.
"""

from __future__ import annotations

import logging

from apdu.errors import InvalidInput, KeySourceError
from card_model.keys import IssuerKeySet
from terminal.keysource.engine import MasterKeyEngine
from terminal.keysource.hsm import HsmRequest, check_answer, error_answer, value_answer
from terminal.keysource.purse import LocalPurseKeys, purse_answer

__all__ = ["SoftwareHsm"]

log = logging.getLogger("sscard.keysource")


class SoftwareHsm:
    """:class:`~terminal.keysource.hsm.HsmModule` holding an issuer master key set."""

    def __init__(self, key_set: IssuerKeySet) -> None:
        self._engine = MasterKeyEngine(key_set)
        self._purse = LocalPurseKeys(key_set)
        self.requests = 0

    def __repr__(self) -> str:
        return f"SoftwareHsm(requests={self.requests})"

    def process(self, request: str) -> str:
        """Answer one step-1 text (never raises for bad input: answers its code)."""
        self.requests += 1
        wallet = purse_answer(self._purse, request)  # the wallet's texts (terminal/keysource/purse.py)
        if wallet is not None:
            return wallet
        try:
            parsed = HsmRequest.parse(request)
            return self.answer(parsed)
        except (InvalidInput, KeySourceError) as exc:
            log.info("software HSM refused a request: %s", exc.error_id)
            return error_answer(exc.national_code)

    def answer(self, request: HsmRequest) -> str:
        engine = self._engine
        operation = request.operation
        if operation == "external_auth":
            return value_answer(
                engine.external_auth(request.role, request.algorithm, request.factor, request.data)
            )
        if operation == "mac":
            return value_answer(
                engine.mac(request.role, request.algorithm, request.factor, request.data, request.extra)
            )
        if operation == "write_key":
            target = request.extra
            return value_answer(
                engine.write_key_body(
                    request.algorithm, request.factor, request.data, target[0], target[1], target[2:]
                )
            )
        ok = engine.verify_internal_auth(request.algorithm, request.factor, request.data, request.extra)
        return check_answer(ok)
