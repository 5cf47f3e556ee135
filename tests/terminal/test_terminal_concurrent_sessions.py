"""Card sessions on several readers at once in one process (issue 4 / bench
"protocol 0 under concurrent sessions").

pcsc-lite answers SCardStatus from one process-wide copy of the reader
states that every thread's calls refresh, so right after SCardConnect a
thread could see its card as just reset (protocol 0) and the session failed
with "unsupported protocol 0x0" about once in 200.  The transport takes the
protocol from SCardConnect's own answer; this test opens many sessions on
three readers in parallel over the real pcscd + vpcd and wants no failure.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import ExitStack

from terminal_cards import card_os, inserted

from apdu.errors import SscardError
from emulator.stack import PcscStack
from terminal import flows
from terminal.session import CardSession

SLOTS = (4, 6, 7)  # this area's card slots (5 holds the PSAM)
SESSIONS_PER_READER = 120


def test_concurrent_sessions_on_several_readers_never_fail(pcsc_stack: PcscStack) -> None:
    failures: Counter[str] = Counter()
    protocols: Counter[str] = Counter()
    done: Counter[str] = Counter()
    lock = threading.Lock()
    readers = [pcsc_stack.reader_for_slot(slot) for slot in SLOTS]

    def work(reader: str) -> None:
        for _ in range(SESSIONS_PER_READER):
            try:
                session = CardSession.open(reader)
                try:
                    basic = flows.read_basic(session)
                    protocol = session.transport.protocol
                finally:
                    session.close()
            except SscardError as exc:
                with lock:
                    failures[f"{type(exc).__name__}: {exc}"] += 1
                continue
            with lock:
                protocols[protocol] += 1
                done[basic.card_number] += 1

    with ExitStack() as stack:
        for slot, reader in zip(SLOTS, readers, strict=True):
            stack.enter_context(inserted(card_os(3), slot, reader))
        threads = [threading.Thread(target=work, args=(reader,)) for reader in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    assert not failures, dict(failures)
    assert sum(done.values()) == len(SLOTS) * SESSIONS_PER_READER
    assert set(protocols) <= {"T0", "T1"}
