"""Service-password entry for the CLI: hidden prompts, or standard input.

PINs are never taken from the command line.  Prompts (on standard error, so
``--json`` output stays clean) hide the input; a new PIN is asked twice and
two different entries are :class:`~apdu.errors.PinEntryError` ``mismatch``
(-34).  With ``--pin-stdin`` the same answers come from standard input, one
per line, in the order the prompts would ask for them (``pin change``: old,
new, new again); a missing line, like Ctrl+C or the end of input at a prompt, is
``PinEntryError`` ``cancelled`` (-31).
The PIN text is checked by the flows (digits, length) and never printed.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Callable

import click

from apdu.errors import PinEntryError
from terminal._data import load_data

__all__ = ["PinSource", "pin_stdin_option"]


def _prompt_text(key: str) -> str:
    return str(load_data("cli")["prompts"][key])


def pin_stdin_option(fn: Callable[..., object]) -> Callable[..., object]:
    """The ``--pin-stdin`` flag of the PIN commands."""
    return click.option(
        "--pin-stdin",
        is_flag=True,
        help="从标准输入读取密码，每行一个（不从命令行参数读取）。"
        "Read the PIN(s) from standard input, one per line.",
    )(fn)


class PinSource:
    """Where the PINs of one command come from (see the module docstring)."""

    def __init__(self, *, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def _line(self, key: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise PinEntryError(
                f"standard input ended before the {key.replace('_', ' ')} was given", kind="cancelled"
            )
        return line.rstrip("\r\n")

    def ask(self, key: str) -> str:
        """One PIN: ``pin``, ``old_pin``, ``new_pin`` or ``confirm_pin``."""
        if self.from_stdin:
            return self._line(key)
        try:
            value: str = click.prompt(_prompt_text(key), hide_input=True, err=True, show_default=False)
        except click.exceptions.Abort:  # Ctrl+C or end of input at the hidden prompt
            raise PinEntryError(
                f"the {key.replace('_', ' ')} entry was cancelled", kind="cancelled"
            ) from None
        return value

    def ask_new(self) -> str:
        """A new PIN, entered twice."""
        first = self.ask("new_pin")
        second = self.ask("confirm_pin")
        if not hmac.compare_digest(first.encode(), second.encode()):
            raise PinEntryError("the two entries of the new PIN differ", kind="mismatch")
        return first
