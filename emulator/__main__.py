"""``python -m emulator ...``: the ``sscard emulator`` command group standalone."""

from emulator.cli import main

raise SystemExit(main())
