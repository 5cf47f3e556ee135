"""The national drop-in's message format: parsing requests, building answers.

A request is one JSON object ``{"function": "<name>", <arguments by their
national names>}``; ``iType`` / ``iAuthType`` may come as numbers or digit
strings.  An answer is ``{"function", "success" (0 or the national code),
"pOutInfo" (``|``-separated, every field followed by ``|``), "message"
(Chinese)}``; a request's ``id`` is echoed when present.  Function names,
their arguments and outputs are data (``data/national_functions.toml``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from apdu.errors import InvalidInput, SscardError
from apdu.status import describe_national
from terminal.service._data import load_data
from terminal.service.errors import FunctionNotSupported, RequestInvalid

__all__ = [
    "MAX_MESSAGE",
    "FunctionSpec",
    "NationalCall",
    "answer",
    "error_answer",
    "function_specs",
    "parse_call",
    "requested_function",
]

MAX_MESSAGE = 16384
ECHO_FIELDS = ("id",)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    handler: str
    operation: str
    args: tuple[str, ...]
    hsm_step: int | None
    hsm_steps: int | None
    output: str

    @property
    def family(self) -> str:
        """The plain function's name (``iReadCardBas`` for ``iReadCardBas_HSM_Step2``)."""
        return self.name.split("_HSM_Step", 1)[0]


@cache
def function_specs() -> dict[str, FunctionSpec]:
    table: dict[str, dict[str, Any]] = load_data("national_functions")["functions"]
    return {
        name: FunctionSpec(
            name=name,
            handler=str(row["handler"]),
            operation=str(row["operation"]),
            args=tuple(row["args"]),
            hsm_step=row.get("hsm_step"),
            hsm_steps=row.get("hsm_steps"),
            output=str(row.get("output", "")),
        )
        for name, row in table.items()
    }


@dataclass(frozen=True, slots=True)
class NationalCall:
    """A parsed request; ``args`` holds only the function's own arguments.
    ``repr`` shows the function name only (arguments may hold HSM answers)."""

    spec: FunctionSpec
    args: dict[str, int | str]
    echo: dict[str, Any]

    def __repr__(self) -> str:
        return f"NationalCall({self.spec.name})"

    def int_arg(self, name: str) -> int:
        value = self.args[name]
        assert isinstance(value, int)
        return value

    def text_arg(self, name: str) -> str:
        value = self.args[name]
        assert isinstance(value, str)
        return value


# a number given as text: ASCII digits only (str.isdigit also takes "²" and
# "١", which int() refuses or reads), at most 9 of them
_INT_TEXT = re.compile(r"\s*(-?[0-9]{1,9})\s*")


def _argument(name: str, value: Any) -> int | str:
    rule: dict[str, Any] = load_data("national_functions")["arguments"][name]
    if rule["kind"] == "int":
        if isinstance(value, str):
            match = _INT_TEXT.fullmatch(value)
            if match is not None:
                value = int(match.group(1))
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name}: a number expected", kind="parameter")
        if not rule["min"] <= value <= rule["max"]:
            raise InvalidInput(f"{name}: {rule['min']}..{rule['max']} expected", kind="parameter")
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: text expected", kind="parameter")
    if len(value) > int(rule["max_length"]):
        raise InvalidInput(f"{name}: longer than {rule['max_length']} characters", kind="length")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800")
        raise InvalidInput(f"{name}: not a valid character string", kind="chars") from None
    return value


def _load(raw: str | bytes) -> Any:
    """The JSON document of a message; None when it is not JSON (or nested
    deeper than the parser's recursion limit)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def requested_function(raw: str | bytes) -> str | None:
    """The ``function`` a message names (known or not, at most 60 characters),
    for the answer to a message that cannot be parsed further; None when the
    message is not a JSON object with a text ``function``."""
    if len(raw) > MAX_MESSAGE:
        return None
    doc = _load(raw)
    name = doc.get("function") if isinstance(doc, dict) else None
    return name[:60] if isinstance(name, str) and name else None


def parse_call(raw: str | bytes) -> NationalCall:
    """Parse one request message; a bad message raises the error to answer
    (RequestInvalid -14, FunctionNotSupported -13, InvalidInput -14/-42)."""
    if len(raw) > MAX_MESSAGE:
        raise RequestInvalid("message too long")
    doc = _load(raw)
    if doc is None:
        raise RequestInvalid("the message is not JSON")
    if not isinstance(doc, dict):
        raise RequestInvalid("a JSON object expected")
    name = doc.get("function")
    if not isinstance(name, str) or not name:
        raise RequestInvalid("the message has no function name")
    spec = function_specs().get(name)
    if spec is None:
        raise FunctionNotSupported(f"unknown function {name[:60]!r}")
    args: dict[str, int | str] = {}
    for arg in spec.args:
        if arg not in doc:
            raise InvalidInput(f"{name}: argument {arg} is missing", kind="parameter")
        args[arg] = _argument(arg, doc[arg])
    echo = {key: doc[key] for key in ECHO_FIELDS if key in doc and isinstance(doc[key], (str, int))}
    return NationalCall(spec=spec, args=args, echo=echo)


def answer(
    function: str | None,
    success: int,
    out: str = "",
    *,
    message: str | None = None,
    echo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The answer object (``message`` defaults to the national code's Chinese text)."""
    text = message if message is not None else describe_national(success)[1]
    body: dict[str, Any] = {"function": function, "success": success, "pOutInfo": out, "message": text}
    if echo:
        body.update(echo)
    return body


def error_answer(
    function: str | None, exc: SscardError, *, echo: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The answer of a failed call: the national code, the error's Chinese text;
    ``pOutInfo`` holds the tries left after a wrong PIN (``2|``), else nothing."""
    retries = getattr(exc, "retries_left", None)
    out = f"{retries}|" if exc.national_code == -51 and isinstance(retries, int) else ""
    return answer(function, exc.national_code, out, message=exc.message_zh, echo=echo)
