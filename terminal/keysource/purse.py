"""Wallet cryptograms from a key source (docs/wallet.md, docs/card-os.md §12).

The terminal never holds the load key (LK), the purchase key (PK) or the
TAC key (TK).  A key source answers only:

- ``load_mac2``: check the card's MAC1 of INITIALIZE FOR LOAD and, only if
  it verifies, give MAC2 for CREDIT FOR LOAD (None when MAC1 is wrong);
- ``purchase_mac1``: MAC1 for DEBIT FOR PURCHASE;
- ``check_purchase_mac2``: whether the card's MAC2 of the debit is right;
- ``check_tac``: whether a load / purchase TAC is right (a TAC is never
  computed for the terminal, so it cannot forge a proof for the clearing).

``seed`` is the 8-byte session-key seed of :mod:`card_model.purse`, the
``*_data`` arguments its MAC / TAC inputs.  Implementations:

* :class:`LocalPurseKeys` over an issuer key set in this process (the
  development key file; the software security module answering requests);
* :class:`PsamPurseKeys`: INIT FOR DESCRYPT + CIPHER P1 ``20``/``21``/``22``/``28``
  on the PSAM (``emulator/psam/purse.py``);
* :class:`HsmPurseKeys`: the national step texts for a security module
  (:class:`~terminal.keysource.hsm.HsmModule`), answered by
  :class:`~terminal.keysource.software_hsm.SoftwareHsm` through
  :func:`purse_answer`:

  =====================  ========================================================  ==================
  operation              step 1                                                    answer
  =====================  ========================================================  ==================
  load MAC2              ``FLAG|ADDR(LK)|FACTOR|SEED|MAC1 DATA|MAC1|MAC2 DATA|``   ``MAC2|`` / ``-21|``
  purchase MAC1          ``FLAG|ADDR(PK)|FACTOR|SEED|MAC1 DATA|``                  ``MAC1|``
  purchase MAC2 check    ``FLAG|ADDR(PK)|FACTOR|SEED|MAC2 DATA|MAC2|``             ``0|`` / ``-15|``
  TAC check              ``FLAG|ADDR(TK)|FACTOR|TAC DATA|TAC|``                    ``0|`` / ``-15|``
  =====================  ========================================================  ==================

:func:`purse_keys` finds the wallet side of a configured key source.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol, runtime_checkable

from apdu.errors import InvalidInput, KeySourceError
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from card_model.purse import MAC_LENGTH, SEED_LENGTH, session_mac, tac_mac
from terminal._data import load_data
from terminal.keysource.base import KeySource, check_factor
from terminal.keysource.hsm import HsmKeySource, HsmModule, key_address

__all__ = [
    "HsmPurseKeys",
    "LocalPurseKeys",
    "PsamPurseKeys",
    "PsamRunner",
    "PurseKeys",
    "purse_answer",
    "purse_keys",
]

log = logging.getLogger("sscard.keysource")

SW_OK = 0x9000
SW_MISMATCH = 0x6300
CIPHER_PURCHASE_MAC1 = 0x20
CIPHER_PURCHASE_MAC2 = 0x21
CIPHER_LOAD_MAC2 = 0x22
CIPHER_TAC = 0x28
_KIND_CODES = (-24, -2201, -2202, -2203, -2204)

PsamRunner = Callable[[KeyRole, Algorithm, bytes, int, bytes], tuple[bytes, int]]


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("wallet")["hsm"]
    return table


@runtime_checkable
class PurseKeys(Protocol):
    """The wallet side of a key source (see the module docstring)."""

    def load_mac2(
        self,
        algorithm: Algorithm,
        factor: bytes,
        seed: bytes,
        mac1_data: bytes,
        mac1: bytes,
        mac2_data: bytes,
    ) -> bytes | None: ...

    def purchase_mac1(self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes) -> bytes: ...

    def check_purchase_mac2(
        self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes, mac2: bytes
    ) -> bool: ...

    def check_tac(self, algorithm: Algorithm, factor: bytes, data: bytes, tac: bytes) -> bool: ...


def _check(seed: bytes | None = None, *macs: bytes) -> None:
    if seed is not None and (not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_LENGTH):
        raise InvalidInput("key source: a wallet session seed is 8 bytes", kind="length")
    for mac in macs:
        if not isinstance(mac, (bytes, bytearray)) or len(mac) != MAC_LENGTH:
            raise InvalidInput("key source: a MAC or TAC is 4 bytes", kind="length")


# -- in this process ----------------------------------------------------------------------------------


class LocalPurseKeys:
    """:class:`PurseKeys` over master keys held in this process (never returned)."""

    __slots__ = ("_keys",)

    def __init__(self, key_set: IssuerKeySet) -> None:
        self._keys = key_set

    def __repr__(self) -> str:
        return f"LocalPurseKeys({self._keys!r})"

    def _card_key(self, role: KeyRole, algorithm: Algorithm, factor: bytes) -> bytes:
        if not self._keys.has(algorithm, role):
            if not any(alg is algorithm for alg, _ in self._keys.masters):
                raise KeySourceError(f"key source: no {algorithm.value} keys", kind="no_algorithm")
            raise KeySourceError(f"key source: no {algorithm.value} {role.value} key", kind="key_level")
        return self._keys.card_key(algorithm, role, check_factor(factor))

    def load_mac2(
        self,
        algorithm: Algorithm,
        factor: bytes,
        seed: bytes,
        mac1_data: bytes,
        mac1: bytes,
        mac2_data: bytes,
    ) -> bytes | None:
        _check(seed, mac1)
        key = self._card_key(KeyRole.LK, algorithm, factor)
        if not hmac.compare_digest(session_mac(key, algorithm, seed, bytes(mac1_data)), bytes(mac1)):
            return None
        return session_mac(key, algorithm, seed, bytes(mac2_data))

    def purchase_mac1(self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes) -> bytes:
        _check(seed)
        return session_mac(self._card_key(KeyRole.PK, algorithm, factor), algorithm, seed, bytes(data))

    def check_purchase_mac2(
        self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes, mac2: bytes
    ) -> bool:
        _check(seed, mac2)
        expected = session_mac(self._card_key(KeyRole.PK, algorithm, factor), algorithm, seed, bytes(data))
        return hmac.compare_digest(expected, bytes(mac2))

    def check_tac(self, algorithm: Algorithm, factor: bytes, data: bytes, tac: bytes) -> bool:
        _check(None, tac)
        expected = tac_mac(self._card_key(KeyRole.TK, algorithm, factor), algorithm, bytes(data))
        return hmac.compare_digest(expected, bytes(tac))


# -- the PSAM -------------------------------------------------------------------------------------------


class PsamPurseKeys:
    """:class:`PurseKeys` over a PSAM; ``run(role, algorithm, factor, p1, data)``
    is the PSAM key source's INIT FOR DESCRYPT + CIPHER exchange (SW 9000 or
    6300 returned, other answers raised as :class:`KeySourceError`)."""

    __slots__ = ("_run",)

    def __init__(self, run: PsamRunner) -> None:
        self._run = run

    def __repr__(self) -> str:
        return "PsamPurseKeys()"

    def load_mac2(
        self,
        algorithm: Algorithm,
        factor: bytes,
        seed: bytes,
        mac1_data: bytes,
        mac1: bytes,
        mac2_data: bytes,
    ) -> bytes | None:
        _check(seed, mac1)
        if not 1 <= len(mac1_data) <= 0xFF:
            raise InvalidInput("key source: the MAC1 input is 1..255 bytes", kind="length")
        data = bytes(seed) + bytes(mac1) + bytes((len(mac1_data),)) + bytes(mac1_data) + bytes(mac2_data)
        answer, sw = self._run(KeyRole.LK, algorithm, factor, CIPHER_LOAD_MAC2, data)
        if sw == SW_MISMATCH:
            return None
        if len(answer) != MAC_LENGTH:
            raise KeySourceError("PSAM: malformed load MAC2", kind="key_level", sw=sw)
        return answer

    def purchase_mac1(self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes) -> bytes:
        _check(seed)
        answer, sw = self._run(KeyRole.PK, algorithm, factor, CIPHER_PURCHASE_MAC1, bytes(seed) + bytes(data))
        if sw != SW_OK or len(answer) != MAC_LENGTH:
            raise KeySourceError("PSAM: malformed purchase MAC1", kind="key_level", sw=sw)
        return answer

    def check_purchase_mac2(
        self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes, mac2: bytes
    ) -> bool:
        _check(seed, mac2)
        _, sw = self._run(
            KeyRole.PK, algorithm, factor, CIPHER_PURCHASE_MAC2, bytes(seed) + bytes(mac2) + bytes(data)
        )
        return sw == SW_OK

    def check_tac(self, algorithm: Algorithm, factor: bytes, data: bytes, tac: bytes) -> bool:
        _check(None, tac)
        _, sw = self._run(KeyRole.TK, algorithm, factor, CIPHER_TAC, bytes(tac) + bytes(data))
        return sw == SW_OK


# -- a security module in steps -----------------------------------------------------------------------


def _flag(algorithm: Algorithm) -> str:
    return str(load_data("keysource")["hsm"]["algorithm_flag"][algorithm.value])


def _text(*fields: bytes | str) -> str:
    return "".join(f"{f.hex().upper() if isinstance(f, (bytes, bytearray)) else f}|" for f in fields)


class HsmPurseKeys:
    """:class:`PurseKeys` asking an :class:`~terminal.keysource.hsm.HsmModule`
    with the step texts of the module docstring."""

    __slots__ = ("module",)

    def __init__(self, module: HsmModule) -> None:
        self.module = module

    def __repr__(self) -> str:
        return f"HsmPurseKeys({type(self.module).__name__})"

    def _ask(self, role: KeyRole, algorithm: Algorithm, factor: bytes, *fields: bytes) -> str:
        request = _text(_flag(algorithm), key_address(algorithm, role), check_factor(factor), *fields)
        answer = self.module.process(request)
        if not isinstance(answer, str):
            raise InvalidInput("security module answer: text expected", kind="parameter")
        body = answer.strip()
        body = body[:-1] if body.endswith("|") else body
        if not body or "|" in body:
            raise InvalidInput("security module answer: one field expected", kind="parameter")
        return body

    @staticmethod
    def _code(body: str) -> int | None:
        if not body.startswith("-"):
            return None
        try:
            return int(body)
        except ValueError:
            raise InvalidInput("security module answer: malformed error code", kind="parameter") from None

    def _raise(self, code: int) -> None:
        if code in _KIND_CODES:
            raise KeySourceError(f"security module answered {code}", national_code=code)
        raise KeySourceError(f"security module answered {code}", kind="key_level")

    def _mac(self, body: str) -> bytes:
        code = self._code(body)
        if code is not None:
            self._raise(code)
        if len(body) != 2 * MAC_LENGTH or any(c not in "0123456789ABCDEFabcdef" for c in body):
            raise InvalidInput("security module answer: a 4-byte MAC expected", kind="length")
        return bytes.fromhex(body)

    def _verdict(self, body: str) -> bool:
        settings = _settings()
        if body == str(settings["verified"]):
            return True
        code = self._code(body)
        if code == int(settings["mismatch"]):
            return False
        if code is None:
            raise InvalidInput("security module answer: '0' or an error code expected", kind="parameter")
        self._raise(code)
        return False

    def load_mac2(
        self,
        algorithm: Algorithm,
        factor: bytes,
        seed: bytes,
        mac1_data: bytes,
        mac1: bytes,
        mac2_data: bytes,
    ) -> bytes | None:
        _check(seed, mac1)
        body = self._ask(KeyRole.LK, algorithm, factor, seed, mac1_data, mac1, mac2_data)
        if self._code(body) == int(_settings()["card_mac_wrong"]):
            return None
        return self._mac(body)

    def purchase_mac1(self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes) -> bytes:
        _check(seed)
        return self._mac(self._ask(KeyRole.PK, algorithm, factor, seed, data))

    def check_purchase_mac2(
        self, algorithm: Algorithm, factor: bytes, seed: bytes, data: bytes, mac2: bytes
    ) -> bool:
        _check(seed, mac2)
        return self._verdict(self._ask(KeyRole.PK, algorithm, factor, seed, data, mac2))

    def check_tac(self, algorithm: Algorithm, factor: bytes, data: bytes, tac: bytes) -> bool:
        _check(None, tac)
        return self._verdict(self._ask(KeyRole.TK, algorithm, factor, data, tac))


def _hex(text: str) -> bytes:
    if not text or len(text) % 2 or any(c not in "0123456789ABCDEFabcdef" for c in text):
        raise InvalidInput("security module request: a field is not hexadecimal", kind="chars")
    return bytes.fromhex(text)


def purse_answer(keys: PurseKeys, request: str) -> str | None:
    """The security module's answer to a wallet step text, or None when
    ``request`` is not one (its key address is not LK / PK / TK).  Never
    raises for bad input: answers the national code."""
    if not isinstance(request, str) or not request.endswith("|"):
        return None
    parts = request[:-1].split("|")
    if len(parts) < 4:
        return None
    flags = {str(v).upper(): Algorithm(k) for k, v in load_data("keysource")["hsm"]["algorithm_flag"].items()}
    algorithm = flags.get(parts[0].upper())
    if algorithm is None:
        return None
    role = next(
        (r for r in (KeyRole.LK, KeyRole.PK, KeyRole.TK) if key_address(algorithm, r) == parts[1].upper()),
        None,
    )
    if role is None:
        return None
    settings = _settings()
    try:
        fields = [_hex(p) for p in parts[2:]]
        factor = fields[0]
        if role is KeyRole.LK and len(fields) == 5:
            mac2 = keys.load_mac2(algorithm, factor, fields[1], fields[2], fields[3], fields[4])
            return f"{settings['card_mac_wrong']}|" if mac2 is None else f"{mac2.hex().upper()}|"
        if role is KeyRole.PK and len(fields) == 3:
            return f"{keys.purchase_mac1(algorithm, factor, fields[1], fields[2]).hex().upper()}|"
        if role is KeyRole.PK and len(fields) == 4:
            ok = keys.check_purchase_mac2(algorithm, factor, fields[1], fields[2], fields[3])
            return f"{settings['verified'] if ok else settings['mismatch']}|"
        if role is KeyRole.TK and len(fields) == 3:
            ok = keys.check_tac(algorithm, factor, fields[1], fields[2])
            return f"{settings['verified'] if ok else settings['mismatch']}|"
        raise InvalidInput(
            "security module request: wrong number of fields for a wallet request", kind="parameter"
        )
    except (InvalidInput, KeySourceError) as exc:
        log.info("software HSM refused a wallet request: %s", exc.error_id)
        return f"{exc.national_code}|"


# -- which one ----------------------------------------------------------------------------------------


def purse_keys(source: KeySource) -> PurseKeys:
    """The wallet side of ``source``: its ``purse`` attribute (PSAM, development
    key file) or the step texts of a security module."""
    own = getattr(source, "purse", None)
    if isinstance(own, PurseKeys):
        return own
    if isinstance(source, HsmKeySource):
        return HsmPurseKeys(source.module)
    raise KeySourceError(f"the {source.kind} key source cannot serve the wallet", kind="key_level")
