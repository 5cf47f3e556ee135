"""Child process of the crash tests: works on the registry until it is SIGKILLed.

    python crash_child.py URL MODE CARD_ID

MODE `script`: three entries begun and completed, a fourth begun, then waits.
MODE `in_txn`: an entry begun, then a write transaction (card change plus the
entry's completion) left open while it waits.
MODE `loop`: temporary loss / release with a journal entry around each, forever.
Each committed step is printed (flushed) so the parent knows what it may expect.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from terminal.registry import Actor, open_registry
from terminal.registry.journal import insert_follow_up

NOW = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
ACTOR = Actor(operator="op-crash", terminal="BJ-T-CRASH")


def say(text: str) -> None:
    print(text, flush=True)


def main(url: str, mode: str, card_id: str) -> None:
    registry, journal = open_registry(url, clock=lambda: NOW)

    def begin(operation: str, step: int) -> int:
        return journal.begin(
            operation,
            card_id=card_id,
            terminal=ACTOR.terminal,
            operator=ACTOR.operator,
            details={"step": str(step)},
        )

    if mode == "script":
        for step in range(3):
            entry = begin("crash.step", step)
            journal.complete(entry, result="ok")
            say(f"completed {entry}")
        say(f"begun {begin('crash.interrupted', 3)}")
        time.sleep(600)
    elif mode == "in_txn":
        entry = begin("crash.in_txn", 0)
        say(f"begun {entry}")
        with registry._db.write() as conn:
            row = registry._lock_card(conn, card_id)
            registry._update_card(conn, row, {"status": "lost"})
            insert_follow_up(conn, now=NOW, entry_id=entry, kind="complete", result="ok")
            say("in_txn")
            time.sleep(600)
    elif mode == "loop":
        step = 0
        while True:
            entry = begin("crash.loop", step)
            say(f"begun {entry}")
            if step % 2 == 0:
                registry.report_loss_temporary(card_id, ACTOR)
            else:
                registry.release_loss(card_id, ACTOR)
            journal.complete(entry, result="ok")
            say(f"completed {entry}")
            step += 1
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
