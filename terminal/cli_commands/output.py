"""Output of the CLI: one JSON object on stdout with ``--json``, else
readable lines (Chinese label, English label, value), and the progress
indication on stderr.

Labels and words are data (``terminal/data/cli.toml`` ``[labels.*]``,
``[words]``, ``[kinds]``, ``[pin_states]``, ``[operations]``, ``[progress]``).
"""

from __future__ import annotations

import json
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import click

from terminal._data import load_data
from terminal.cli_commands.state import cli_state

__all__ = [
    "Progress",
    "display_width",
    "emit",
    "field_lines",
    "label",
    "progress",
    "text",
    "yes_no",
]


def text(section: str, key: str) -> str:
    """A text of ``terminal/data/cli.toml`` (``[words]``, ``[kinds]``, ...)."""
    table: dict[str, Any] = load_data("cli")[section]
    return str(table[key])


def label(section: str, key: str) -> str:
    """``中文 English`` label of a field."""
    zh, en = load_data("cli")["labels"][section][key]
    return f"{zh} {en}"


def yes_no(value: bool | None) -> str:
    if value is None:
        return text("words", "none")
    return text("words", "yes" if value else "no")


def display_width(value: str) -> int:
    """Columns ``value`` takes in a terminal (wide CJK characters count 2)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in value)


def _pad(value: str, width: int) -> str:
    return value + " " * max(width - display_width(value), 0)


def field_lines(section: str, rows: Sequence[tuple[str, Any]], *, indent: int = 0) -> list[str]:
    """Aligned ``label  value`` lines for ``(field, value)`` rows of a label section."""
    labels = [label(section, key) for key, _ in rows]
    width = max((display_width(item) for item in labels), default=0)
    pad = " " * indent
    out = []
    for item, (_, value) in zip(labels, rows, strict=True):
        shown = text("words", "none") if value is None or value == "" else str(value)
        out.append(f"{pad}{_pad(item, width)}  {shown}")
    return out


def emit(ctx: click.Context, payload: Mapping[str, Any], lines: Iterable[str]) -> None:
    """``payload`` as one JSON object on stdout with ``--json``; else the lines."""
    if cli_state(ctx).json:
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    for line in lines:
        click.echo(line)


class Progress:
    """A progress note on a stream for something that may take a moment.

    On a terminal the note appears only when the work lasts longer than
    ``delay`` seconds and is erased when it ends; elsewhere it is written as a
    line at the start when ``verbose`` (``-v``), and not at all otherwise.
    Never on standard output.
    """

    def __init__(self, message: str, *, stream: IO[str], verbose: bool, delay: float) -> None:
        self.message = message
        self.stream = stream
        self.verbose = verbose
        self.delay = delay
        self.shown = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def _interactive(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _show(self) -> None:
        with self._lock:
            if self._timer is None:
                return
            self.stream.write(f"\r… {self.message}")
            self.stream.flush()
            self.shown = True

    def __enter__(self) -> Progress:
        if self._interactive():
            self._timer = threading.Timer(self.delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        elif self.verbose:
            self.stream.write(f"… {self.message}\n")
            self.stream.flush()
            self.shown = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
                if self.shown:
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()


@contextmanager
def progress(ctx: click.Context, key: str) -> Iterator[Progress]:
    """:class:`Progress` on standard error with the ``[progress]`` text ``key``."""
    texts: dict[str, Any] = load_data("cli")["progress"]
    note = Progress(
        str(texts[key]),
        stream=sys.stderr,
        verbose=cli_state(ctx).verbose > 0,
        delay=float(texts["delay_seconds"]),
    )
    with note:
        yield note
