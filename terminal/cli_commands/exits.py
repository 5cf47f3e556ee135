"""Exit codes and error reports of the CLI.

:func:`exit_code_for` maps an exception to the documented exit code through
the table in ``terminal/data/exit_codes.toml`` (class names along the MRO,
``Class.kind`` first).  :func:`report_error` writes the error on standard
error: the Chinese message with the national code (and SW) and the English
message, or with ``--json`` the JSON body ``{"error", "message",
"message_en", "national_code", "sw", ...}`` (codes as strings).  Nothing of
an error goes to standard output.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import click

from apdu.errors import SscardError
from terminal._data import load_data

__all__ = ["EXIT_OK", "error_body", "error_lines", "exit_code", "exit_code_for", "report_error"]

EXIT_OK = 0


@cache
def _tables() -> tuple[dict[str, int], dict[str, str]]:
    doc = load_data("exit_codes")
    codes = {str(name): int(code) for name, code in doc["codes"].items()}
    classes = {str(name): str(code) for name, code in doc["classes"].items()}
    unknown = set(classes.values()) - set(codes)
    if unknown:
        raise LookupError(f"terminal/data/exit_codes.toml: unknown code names {sorted(unknown)}")
    return codes, classes


def exit_code(name: str) -> int:
    """The exit code called ``name`` in the table (``usage``, ``no_card`` ...)."""
    return _tables()[0][name]


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of ``exc``: its own ``exit_code`` when it
    carries one (the registry's, emulator's and bench's errors, click's
    exceptions), else the table's entry, else 1."""
    own = getattr(exc, "exit_code", None)
    if isinstance(own, int) and not isinstance(own, bool):
        return own
    codes, classes = _tables()
    kind = getattr(exc, "kind", None)
    for klass in type(exc).__mro__:
        if isinstance(kind, str) and f"{klass.__name__}.{kind}" in classes:
            return codes[classes[f"{klass.__name__}.{kind}"]]
        if klass.__name__ in classes:
            return codes[classes[klass.__name__]]
    return codes["other"]


def error_body(exc: SscardError) -> dict[str, Any]:
    """The JSON error body of the contract (national code as a string), with
    ``retries_left`` and the reader names where the exception has them."""
    body = exc.to_dict()
    body["national_code"] = str(exc.national_code)
    retries = getattr(exc, "retries_left", None)
    if isinstance(retries, int):
        body["retries_left"] = retries
    for attribute in ("candidates", "available"):
        names = getattr(exc, attribute, None)
        if names:
            body["readers"] = list(names)
    body["exit_code"] = exit_code_for(exc)
    return body


def error_lines(exc: SscardError) -> list[str]:
    """Two lines: Chinese message with the national code (and SW), English message."""
    where = f"代码 {exc.national_code}"
    if exc.sw is not None:
        where += f"，SW {exc.sw:04X}"
    return [f"错误：{exc.message_zh}（{where}）", f"error: {exc} [{exc.error_id}]"]


def report_error(exc: SscardError, *, json_mode: bool) -> int:
    """Write ``exc`` to standard error and return its exit code."""
    if json_mode:
        click.echo(json.dumps(error_body(exc), ensure_ascii=False), err=True)
    else:
        for line in error_lines(exc):
            click.echo(line, err=True)
    return exit_code_for(exc)
