"""Help texts of the commands, shared by the root group's listing and the
commands themselves (``terminal/data/cli.toml`` ``[commands.<name>] help``)."""

from __future__ import annotations

from terminal._data import load_data

__all__ = ["command_help"]


def command_help(name: str, extra: str = "") -> str:
    """The one-line help of command ``name``, followed by ``extra`` paragraphs."""
    line = str(load_data("cli")["commands"][name]["help"])
    return f"{line}\n\n{extra}" if extra else line
