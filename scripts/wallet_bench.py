#!/usr/bin/env python3
"""Latency of the wallet flows (docs/wallet.md "Measured"): load and purchase
in process (card OS and PSAM objects) and over pcscd + vpcd (the card in
vpcd slot 8, the PSAM in slot 9; pcscd is started when none runs).  Prints
the median and the 90th percentile of each; run it inside scripts/isolated
when other people share the machine:

    scripts/isolated .venv/bin/python scripts/wallet_bench.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apdu.inprocess import InProcessTransport
from apdu.pcsc import reader_states
from card_model.demo import demo_card_image, demo_psam_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal.flows import wallet
from terminal.journal_hook import MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.session import CardSession

CARD_SLOT, PSAM_SLOT = 8, 9


def _measure(rounds: int, step: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def _report(where: str, session: CardSession, rounds: int) -> None:
    load = _measure(rounds, lambda: wallet.load(session, 100))
    purchase = _measure(rounds, lambda: wallet.purchase(session, 100))
    balance = _measure(rounds, lambda: wallet.wallet_balance(session))
    for name, (median, p90) in (("load", load), ("purchase", purchase), ("balance", balance)):
        print(f"{where:12} {name:9} median {median:7.2f} ms   p90 {p90:7.2f} ms")


def _in_process(rounds: int) -> None:
    psam = PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="PSAM"))
    transport = InProcessTransport(CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE)), reader="card")
    session = CardSession(transport, key_source=psam, journal=MemoryJournal())
    session.connect()
    _report("in process", session, rounds)


def _wait(reader: str, present: bool) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (state,) = reader_states([reader])
        if state.present == present:
            return
        time.sleep(0.01)
    raise SystemExit(f"{reader}: the card did not {'appear' if present else 'go'}")


def _pcsc(rounds: int) -> None:
    with PcscStack(min_slots=16) as stack:
        card_reader, psam_reader = stack.reader_for_slot(CARD_SLOT), stack.reader_for_slot(PSAM_SLOT)
        psam_link = VpcdLink(PsamCard(demo_psam_image()), PSAM_SLOT)
        card_link = VpcdLink(CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE)), CARD_SLOT)
        psam_link.insert()
        card_link.insert()
        try:
            _wait(psam_reader, True)
            _wait(card_reader, True)
            psam = PsamKeySource.open(psam_reader)
            session = CardSession.open(card_reader, key_source=psam, journal=MemoryJournal())
            try:
                _report("pcscd+vpcd", session, rounds)
            finally:
                session.close()
                psam.close()
        finally:
            card_link.remove()
            psam_link.remove()
            _wait(card_reader, False)
            _wait(psam_reader, False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=50, help="measurements per flow (default 50)")
    parser.add_argument("--no-pcsc", action="store_true", help="in process only")
    args = parser.parse_args(argv)
    _in_process(args.rounds)
    if not args.no_pcsc:
        _pcsc(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
