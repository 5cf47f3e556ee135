"""A terminal process SIGKILLed in the middle of a card flow (over pcscd + vpcd):
every committed journal entry stays, the interrupted one is incomplete, and
the next presentation settles it from the card's state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from terminal_registry_support import CARD_SLOT, Terminal, gen3_card, inserted, register_demo

from emulator.vpcd import CardWrapper, VirtualCard
from terminal import flows

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("terminal_registry_crash_child.py")
CHANGE_PIN = 0x5E


class StallingCard(CardWrapper):
    """Executes the next CHANGE PIN, then holds the answer until released."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.reached = threading.Event()
        self.release = threading.Event()

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        if len(apdu) > 1 and apdu[1] == CHANGE_PIN and not self.reached.is_set():
            self.reached.set()
            self.release.wait(timeout=60)
        return answer


def test_sigkill_during_a_pin_change_leaves_the_entry_incomplete_until_the_next_session(
    make_terminal: Callable[[str], Terminal], any_url: str
) -> None:
    term = make_terminal(any_url)
    term.clock.now = datetime.now(UTC)  # the child journals with the real clock
    card_id = register_demo(term.registry)
    card = StallingCard(gen3_card())
    with inserted(card, CARD_SLOT, term.reader):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), any_url, term.reader],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert card.reached.wait(timeout=60), "the child never sent CHANGE PIN"
        finally:
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=30)
            card.release.set()
        assert child.returncode == -signal.SIGKILL, err.decode()
        assert out.decode().split() == ["presented"]

        entries = term.journal.query(card_id=card_id)
        assert [(e.operation, e.state, e.result) for e in entries] == [
            ("registry.register_card", "completed", "ok"),
            ("card.present", "completed", "ok"),
            ("pin.change", "open", None),
        ]
        assert entries[1].terminal == "BJ-T-CRASH"
        (open_entry,) = term.journal.incomplete(card_id)
        assert open_entry.details == {"initial_before": "true", "tries_before": "3"}

        session = term.session()  # the next presentation settles it from the card's state
        assert session.presentation is not None and session.presentation.settled is not None
        settled = session.presentation.settled.entries
        assert [(e.operation, e.outcome) for e in settled] == [("pin.change", "applied")]
        assert flows.resolve_torn(session).entries == ()
        assert term.journal.entry(open_entry.id).state == "resolved"
        assert term.journal.incomplete(card_id) == []
        assert flows.verify_pin(session, "135790").status.verified  # the change did reach the card
        session.close()
    if any_url.startswith("sqlite"):
        engine = sa.create_engine(any_url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
