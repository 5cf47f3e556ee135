"""Errors as HTTP answers: the status of each error class (data/http_status.toml)
and the JSON error body of the CLI/service contract (``error``, ``message``
in Chinese, ``message_en``, ``national_code``, ``sw`` when a card answered,
``retries_left`` after a wrong PIN or key, ``retry_after`` when rate-limited).

``national_code`` is a string (``"-51"``), as interfaces.md says ("codes as
strings") and as the CLI's ``--json`` and the registry write it; every JSON
body and event of the native API, the kiosk and the PIN page builds it with
:func:`error_body` / :func:`code_text`.  Only the national drop-in answers
``success`` as a number, because existing counter pages compare it with 0."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from apdu.errors import SscardError
from terminal.service._data import load_data
from terminal.service.errors import PinRateLimited, Unauthorized

__all__ = ["code_text", "error_body", "error_response", "http_status"]


def http_status(exc: SscardError) -> int:
    """The HTTP status for ``exc`` (most specific class first, ``Class.kind`` first)."""
    table: dict[str, int] = load_data("http_status")["status"]
    kind = getattr(exc, "kind", None)
    for klass in type(exc).__mro__:
        if kind is not None and f"{klass.__name__}.{kind}" in table:
            return int(table[f"{klass.__name__}.{kind}"])
        if klass.__name__ in table:
            return int(table[klass.__name__])
    return 500


def code_text(code: int) -> str:
    """A national code as the native API writes it (``-51`` -> ``"-51"``)."""
    return str(int(code))


def error_body(exc: SscardError) -> dict[str, Any]:
    """The JSON error body of ``exc``: ``to_dict()`` with the national code as a
    string and ``retries_left`` when the error carries it."""
    body: dict[str, Any] = exc.to_dict()
    body["national_code"] = code_text(exc.national_code)
    retries = getattr(exc, "retries_left", None)
    if isinstance(retries, int) and not isinstance(retries, bool):
        body["retries_left"] = retries
    return body


def error_response(exc: SscardError, *, status: int | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, PinRateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.49)))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="sscard"'
    return JSONResponse(error_body(exc), status_code=status or http_status(exc), headers=headers)
