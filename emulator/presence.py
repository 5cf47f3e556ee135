"""Insert a virtual card and wait until pcscd has seen it (and seen it go).

vpcd reports a card only when it next polls the slot (about every 400 ms),
so a card connected to its slot is not yet a card in the PC/SC reader.
:func:`wait_for_card` polls ``SCardGetStatusChange`` with a deadline;
:func:`inserted` is the context manager tests, the demo and the benchmarks
use: the card is in the reader for the block and the reader is empty again
afterwards, whatever happened inside.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from apdu.pcsc import ReaderState, reader_states
from emulator.errors import CardNotSeen
from emulator.vpcd import VirtualCard, VpcdLink

__all__ = ["DEFAULT_TIMEOUT", "POLL_SECONDS", "inserted", "wait_for_card"]

DEFAULT_TIMEOUT = 10.0
POLL_SECONDS = 0.01


def wait_for_card(
    reader: str, present: bool, timeout: float = DEFAULT_TIMEOUT, *, atr: bytes | None = None
) -> ReaderState:
    """Poll ``reader`` until a card is present with its ATR (``present``) or gone.

    With ``atr`` the card must show exactly that ATR.  Raises
    :class:`~emulator.errors.CardNotSeen` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if present and state.present and state.atr and (atr is None or state.atr == atr):
            return state
        if not present and not state.present:
            return state
        if time.monotonic() >= deadline:
            what = "appear in" if present else "leave"
            zh = "插入" if present else "拔出"
            raise CardNotSeen(
                f"the card did not {what} {reader} within {timeout:g} s",
                detail_zh=f"{reader}：{timeout:g} 秒内未识别到卡片{zh}",
            )
        time.sleep(POLL_SECONDS)


@contextmanager
def inserted(
    card: VirtualCard,
    slot: int,
    reader: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    host: str = "127.0.0.1",
) -> Iterator[VpcdLink]:
    """``card`` in vpcd ``slot`` (PC/SC ``reader``) for the block, removed after."""
    link = VpcdLink(card, slot, host=host)
    link.insert(timeout=timeout)
    try:
        wait_for_card(reader, True, timeout)
        yield link
    finally:
        link.remove()
        wait_for_card(reader, False, timeout)
