"""``python -m terminal.service``: ``sscard serve`` without the root CLI."""

from terminal.service.cli import main

main()
