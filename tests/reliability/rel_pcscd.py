"""A private pcscd for the infrastructure and soak tests, never the shared one.

pcscd 1.9.9 always listens on /run/pcscd/pcscd.comm, so this daemon runs in
its own mount namespace (``unshare --mount``) where /run/pcscd is a bind
mount of a temporary directory; a client process reaches it with
``PCSCLITE_CSOCK_NAME`` (the service under test runs as such a child
process).  Its vpcd readers listen on their own TCP ports, 35963 + 48 ..
35963 + 55 ("slots" 48-55 for :class:`emulator.vpcd.VpcdLink`), away from
the shared stack (35963 + 0..15) and the other areas' private daemons
(+ 40/41 terminal, + 44/45 emulator).

Only the process started here is ever signalled: :meth:`PrivatePcscd.kill`
(SIGKILL, a crash) and :meth:`PrivatePcscd.stop` (SIGTERM, an orderly stop).
"""

from __future__ import annotations

from pathlib import Path

from private_pcscd import NamespacedPcscd

from emulator.stack import VPCD_BASE_PORT, VpcdEntry

FIRST_SLOT = 48
MAX_ENTRIES = 4
FRIENDLY = "sscard reliability PCD"


class PrivatePcscd(NamespacedPcscd):
    """pcscd with ``entries`` vpcd drivers of two slots each (slots 48, 49, 50 ...)."""

    conf_name = "sscard-reliability-vpcd"

    def __init__(self, run_dir: Path, entries: int = 3) -> None:
        if not 1 <= entries <= MAX_ENTRIES:
            raise ValueError(f"entries must be 1..{MAX_ENTRIES}")
        super().__init__(run_dir)
        self.entries = tuple(
            VpcdEntry(f"{FRIENDLY} {chr(ord('A') + i)}", VPCD_BASE_PORT + FIRST_SLOT + 2 * i)
            for i in range(entries)
        )

    @property
    def slots(self) -> list[int]:
        """VpcdLink slot numbers of the readers, in order."""
        return [FIRST_SLOT + i for i in range(2 * len(self.entries))]

    def reader(self, slot: int) -> str:
        """The PC/SC name of the reader of ``slot``."""
        index = slot - FIRST_SLOT
        if not 0 <= index < 2 * len(self.entries):
            raise ValueError(f"slot {slot} is not a reader of this daemon")
        return f"{self.entries[index // 2].friendly_name} 00 {index % 2:02X}"

    def _entries(self) -> tuple[tuple[VpcdEntry, Path], ...]:
        return tuple((entry, self._driver_copy(i)) for i, entry in enumerate(self.entries))

    def start(self, deadline: float = 15.0) -> None:
        if not self.running:
            self._launch(deadline)
