"""The demo PSAM in a vpcd slot, opened as a key source over PC/SC: the
fixture every area that runs key flows over the real stack builds on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from card_model.demo import demo_psam_image
from emulator.presence import inserted
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from terminal.keysource import PsamKeySource


@contextmanager
def demo_psam_source(stack: PcscStack, slot: int) -> Iterator[PsamKeySource]:
    """Insert the demo PSAM into ``slot``, wait until PC/SC sees it, open it;
    close it and pull it out at the end."""
    reader = stack.reader_for_slot(slot)
    with inserted(PsamCard(demo_psam_image()), slot, reader):
        source = PsamKeySource.open(reader)
        try:
            yield source
        finally:
            source.close()
