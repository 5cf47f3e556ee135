"""Key source over a back-end security module (HSM), in explicit steps.

The national interface splits every keyed operation in steps: step 1 hands
the module exactly what it needs, step 2 (and 3) take its answer.  Step 1
text (``terminal/data/keysource.toml`` [hsm]):

    external authentication   FLAG|ADDR|FACTOR|CHALLENGE|
    command MAC               FLAG|ADDR|FACTOR|IV|MESSAGE|
    internal-auth check       FLAG|ADDR|FACTOR|RANDOM|CARD ANSWER|
    WRITE KEY body (issuance) FLAG|ADDR(KTK)|FACTOR|IV|P1 P2 [PIN BLOCK]|

FLAG is the algorithm flag (``03`` SM4, ``01`` 3DES), ADDR the key address of
the role's master key (4 hex digits: algorithm base + card KID, e.g. ``0003``
for the SM4 reading key RK), FACTOR the 8-byte diversification factor
("random 1"), then the data to authenticate ("random 2") and, for MACs and
checks, one more field; hex upper case, each field followed by ``|``.  The
module answers ``CRYPTOGRAM|`` (16/8 bytes), ``MAC|`` (4 bytes), ``BODY|`` (the
WRITE KEY cryptogram and MAC), ``0|`` for
a matching internal authentication, or a national error code (``-21|``,
``-24|``, ``-2202|`` ...).  The key address tells the module which operation
is asked: a role's master key serves only its usage (RK/EAK external
authentication, IAK the check, the MAC roles MACs).

:class:`HsmKeySource` turns the key source calls of the flows into such
requests for an :class:`HsmModule` (``process(request) -> answer``): the
software module (:class:`~terminal.keysource.software_hsm.SoftwareHsm`)
directly, or an outside module through
:class:`~terminal.keysource.steps.HsmConversation` (step by step).  Step
texts of MACs over PIN commands contain the PIN block: never log them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol, runtime_checkable

from apdu.errors import InvalidInput, KeySourceError
from card_model.keys import Algorithm, KeyRole
from terminal._data import load_data
from terminal.keysource.base import MAC_LENGTH, check_challenge, check_factor, check_iv
from terminal.keysource.loading import body_length, check_write_target

__all__ = [
    "HsmKeySource",
    "HsmModule",
    "HsmOperation",
    "HsmRequest",
    "check_answer",
    "error_answer",
    "key_address",
    "parse_answer",
    "value_answer",
]

HsmOperation = Literal["external_auth", "mac", "verify_internal_auth", "write_key"]
_USAGE_OPERATION: dict[str, HsmOperation] = {
    "ext": "external_auth",
    "mac": "mac",
    "int": "verify_internal_auth",
    "wrap": "write_key",
}
_KIND_CODES = (-24, -2201, -2202, -2203, -2204)


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("keysource")["hsm"]
    return table


def _flag(algorithm: Algorithm) -> str:
    return str(_settings()["algorithm_flag"][algorithm.value])


def key_address(algorithm: Algorithm, role: KeyRole) -> str:
    """The module's address of ``role``'s master key for ``algorithm``."""
    settings = _settings()
    base = int(settings["key_address_base"][algorithm.value])
    return f"{base + role.kid:0{int(settings['key_address_digits'])}X}"


def operation_for(role: KeyRole) -> HsmOperation:
    """What a role's master key serves (its PSAM usage)."""
    for usage in sorted(role.psam_usage):
        operation = _USAGE_OPERATION.get(usage)
        if operation is not None:
            return operation
    raise KeySourceError(f"security module: the {role.value} key serves no step operation", kind="key_level")


def _hex(name: str, text: str) -> bytes:
    if not text or len(text) % 2 or any(c not in "0123456789ABCDEFabcdef" for c in text):
        raise InvalidInput(f"security module: {name} is not hexadecimal", kind="chars")
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class HsmRequest:
    """One step-1 request; ``repr`` never shows its data."""

    algorithm: Algorithm
    role: KeyRole
    factor: bytes = field(repr=False)
    data: bytes = field(repr=False)
    extra: bytes = field(default=b"", repr=False)

    @property
    def operation(self) -> HsmOperation:
        return operation_for(self.role)

    @property
    def fields(self) -> tuple[str, ...]:
        out = [
            _flag(self.algorithm),
            key_address(self.algorithm, self.role),
            self.factor.hex(),
            self.data.hex(),
        ]
        if self.operation != "external_auth":
            out.append(self.extra.hex())
        return tuple(f.upper() for f in out)

    def to_text(self) -> str:
        """The national step-1 form ``FLAG|ADDR|FACTOR|DATA|[EXTRA|]``."""
        return "".join(f"{f}|" for f in self.fields)

    @classmethod
    def parse(cls, text: str) -> HsmRequest:
        """Parse a step-1 text strictly (:class:`InvalidInput` -14/-41/-42)."""
        if not isinstance(text, str) or not text.endswith("|"):
            raise InvalidInput("security module request: fields must each end with '|'", kind="parameter")
        parts = text[:-1].split("|")
        if len(parts) not in (4, 5):
            raise InvalidInput("security module request: 4 or 5 fields expected", kind="parameter")
        flags = {str(v).upper(): Algorithm(k) for k, v in _settings()["algorithm_flag"].items()}
        algorithm = flags.get(parts[0].upper())
        if algorithm is None:
            raise KeySourceError("security module request: unknown algorithm flag", kind="no_algorithm")
        role = next((r for r in KeyRole if key_address(algorithm, r) == parts[1].upper()), None)
        if role is None:
            raise KeySourceError("security module request: unknown key address", kind="key_level")
        factor = _hex("random 1 (factor)", parts[2])
        data = _hex("random 2", parts[3])
        request = cls(algorithm, role, factor, data, _hex("data", parts[4]) if len(parts) == 5 else b"")
        expected = 4 if request.operation == "external_auth" else 5
        if len(parts) != expected:
            raise InvalidInput(
                f"security module request: {expected} fields expected for {request.operation}",
                kind="parameter",
            )
        check_factor(request.factor)
        if request.operation == "external_auth":
            check_challenge(request.data, algorithm)
        elif request.operation == "mac":
            check_iv(request.data, algorithm)
        elif request.operation == "write_key":
            check_iv(request.data, algorithm)
            if len(request.extra) < 2:
                raise InvalidInput("security module request: the target is P1 P2 [PIN block]", kind="length")
            check_write_target(request.extra[0], request.extra[1], request.extra[2:])
        elif len(request.data) != algorithm.block_size:
            raise InvalidInput("security module request: the random is one block", kind="length")
        return request


def value_answer(value: bytes) -> str:
    return f"{value.hex().upper()}|"


def error_answer(code: int) -> str:
    return f"{code}|"


def check_answer(matches: bool) -> str:
    """The answer of an internal-authentication check (``0|`` / ``-21|``)."""
    settings = _settings()
    return f"{settings['verified'] if matches else settings['not_verified']}|"


def parse_answer(text: str, request: HsmRequest) -> bytes | bool:
    """The module's answer to ``request``: cryptogram / MAC bytes, or for a check
    True/False.  A national error code answer raises :class:`KeySourceError`;
    a malformed answer :class:`InvalidInput` (-14), without echoing it."""
    if not isinstance(text, str):
        raise InvalidInput("security module answer: text expected", kind="parameter")
    body = text.strip()
    body = body[:-1] if body.endswith("|") else body
    if "|" in body or not body:
        raise InvalidInput("security module answer: one field expected", kind="parameter")
    settings = _settings()
    if request.operation == "verify_internal_auth":
        if body == str(settings["verified"]):
            return True
        if body == str(settings["not_verified"]):
            return False
    if body.startswith("-"):
        try:
            code = int(body)
        except ValueError:
            raise InvalidInput("security module answer: malformed error code", kind="parameter") from None
        if code in _KIND_CODES:
            raise KeySourceError(f"security module answered {code}", national_code=code)
        raise KeySourceError(f"security module answered {code}", kind="key_level")
    if request.operation == "verify_internal_auth":
        raise InvalidInput("security module answer: '0' or an error code expected", kind="parameter")
    value = _hex("answer", body)
    if request.operation == "write_key":
        size = body_length(request.algorithm, request.extra[0], request.extra[2:])
    elif request.operation == "mac":
        size = MAC_LENGTH
    else:
        size = request.algorithm.block_size
    if len(value) != size:
        raise InvalidInput(f"security module answer: {size} bytes expected", kind="length")
    return value


@runtime_checkable
class HsmModule(Protocol):
    """A security module: takes a step-1 text, answers the step-2 text."""

    def process(self, request: str) -> str: ...


class HsmKeySource:
    """:class:`~terminal.keysource.base.KeySource` that asks an :class:`HsmModule`."""

    kind = "hsm"

    def __init__(self, module: HsmModule, *, terminal_number: str = "") -> None:
        self.module = module
        self._terminal_number = terminal_number

    def __repr__(self) -> str:
        return f"HsmKeySource({type(self.module).__name__})"

    @property
    def terminal_number(self) -> str:
        return self._terminal_number

    def _ask(self, request: HsmRequest) -> bytes | bool:
        return parse_answer(self.module.process(request.to_text()), request)

    def _require(self, role: KeyRole, operation: HsmOperation) -> None:
        if operation_for(role) != operation:
            raise KeySourceError(
                f"security module: the {role.value} key may not be used for {operation}", kind="key_level"
            )

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        self._require(role, "external_auth")
        answer = self._ask(
            HsmRequest(algorithm, role, check_factor(factor), check_challenge(challenge, algorithm))
        )
        assert isinstance(answer, bytes)
        return answer

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        self._require(role, "mac")
        answer = self._ask(
            HsmRequest(algorithm, role, check_factor(factor), check_iv(iv, algorithm), bytes(message))
        )
        assert isinstance(answer, bytes)
        return answer

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        if len(challenge) != algorithm.block_size or len(response) != algorithm.block_size:
            return False
        answer = self._ask(
            HsmRequest(algorithm, KeyRole.IAK, check_factor(factor), bytes(challenge), bytes(response))
        )
        return bool(answer)

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        """A WRITE KEY body: step ``FLAG|ADDR(KTK)|FACTOR|IV|P1 P2 [PIN block]|``."""
        check_write_target(p1, p2, pin_block)
        target = bytes((p1, p2)) + bytes(pin_block)
        answer = self._ask(
            HsmRequest(algorithm, KeyRole.KTK, check_factor(factor), check_iv(iv, algorithm), target)
        )
        assert isinstance(answer, bytes)
        return answer

    def close(self) -> None:
        close = getattr(self.module, "close", None)
        if callable(close):
            close()
