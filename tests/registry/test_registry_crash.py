"""A process SIGKILLed mid-flow: committed entries intact, the interrupted one incomplete."""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from terminal.registry import open_registry

if TYPE_CHECKING:
    from conftest import Env

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_child.py")


class Child:
    def __init__(self, url: str, mode: str, card_id: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), url, mode, card_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: list[str] = []
        self._buffer = b""

    def wait_for(self, done: object, timeout: float = 60.0) -> None:
        """Read lines until `done(lines)` is true."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while not done(self.lines):  # type: ignore[operator]
            left = deadline - time.monotonic()
            assert left > 0, f"child too slow; said {self.lines}"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                assert self.proc.stderr is not None
                raise AssertionError(f"child ended early: {self.proc.stderr.read().decode()}")
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines += [line.decode() for line in complete]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()

    def ids(self, word: str) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith(word + " ")]


def _integrity_ok(url: str) -> None:
    if not url.startswith("sqlite"):
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        engine.dispose()


def test_kill_between_intent_and_outcome(env: Env) -> None:
    card_id = env.active_card(1)
    child = Child(env.url, "script", card_id)
    child.wait_for(lambda lines: any(line.startswith("begun") for line in lines))
    child.kill()
    _integrity_ok(env.url)

    registry, journal = open_registry(env.url, clock=env.clock)
    try:
        entries = {e.id: e for e in journal.query(card_id=card_id, terminal="BJ-T-CRASH")}
        completed, (interrupted,) = child.ids("completed"), child.ids("begun")
        assert sorted(entries) == sorted([*completed, interrupted])
        for entry_id in completed:
            entry = entries[entry_id]
            assert (entry.state, entry.result, entry.operation) == ("completed", "ok", "crash.step")
        assert [e.id for e in journal.incomplete(card_id)] == [interrupted]
        assert entries[interrupted].details == {"step": "3"}
        # the next presentation resolves it
        journal.resolve(interrupted, resolution="card_checked", result="failed", note="terminal crashed")
        assert journal.incomplete(card_id) == []
    finally:
        registry.close()


def test_kill_inside_an_open_write_transaction(env: Env) -> None:
    card_id = env.active_card(1)
    before = env.registry.card(card_id)
    child = Child(env.url, "in_txn", card_id)
    child.wait_for(lambda lines: "in_txn" in lines)
    child.kill()
    _integrity_ok(env.url)

    (entry_id,) = child.ids("begun")
    assert [e.id for e in env.journal.incomplete(card_id)] == [entry_id]
    assert env.registry.card(card_id) == before
    # nothing is left locked: the next terminal goes ahead
    assert env.registry.report_loss_formal(card_id, env.clerk).status == "lost"


def test_kill_during_a_stream_of_operations(env: Env) -> None:
    card_id = env.active_card(1)
    child = Child(env.url, "loop", card_id)
    child.wait_for(lambda lines: sum(line.startswith("completed") for line in lines) >= 12)
    child.kill()
    _integrity_ok(env.url)

    registry, journal = open_registry(env.url, clock=env.clock)
    try:
        entries = {e.id: e for e in journal.query(card_id=card_id, operation="crash.loop")}
        for entry_id in child.ids("completed"):
            assert entries[entry_id].state == "completed"
        assert set(child.ids("begun")) <= set(entries)
        assert len([e for e in entries.values() if e.incomplete]) <= 1
        # each registry change, its history row and its journal entry were committed together
        history = registry.history(card_id)
        card = registry.card(card_id)
        assert card.status == history[-1].to_status and card.version == len(history)
        for earlier, later in itertools.pairwise(history):
            assert later.from_status == earlier.to_status
        changes = journal.query(card_id=card_id, operation="registry.report_loss_temporary") + journal.query(
            card_id=card_id, operation="registry.release_loss"
        )
        assert len(changes) == len(history) - 1  # all but the registration
        assert all(e.state == "completed" for e in changes)
    finally:
        registry.close()
