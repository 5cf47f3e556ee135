"""Several processes racing on one card: where only one may succeed, only one does.

Each worker opens its own registry on the same database, waits at a barrier
and fires; runs on PostgreSQL (row locks) and SQLite (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from terminal.registry import Actor, NewCard, Registry, open_registry
from terminal.registry.errors import RegistryError

if TYPE_CHECKING:
    from conftest import Env

CTX = multiprocessing.get_context("fork")
ROUNDS = 3
START = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # the FakeClock's start
ACTOR = Actor(operator="op-race", terminal="BJ-T-RACE")


def _new_card(card_id: str) -> NewCard:
    return NewCard(card_id, "X09999999", 3, "2025-06-01", "2035-05-31")


ACTIONS: dict[str, Callable[..., Any]] = {
    "release": lambda reg, jour, card: reg.release_loss(card, ACTOR).status,
    "replace": lambda reg, jour, card, new: reg.replace(card, _new_card(new), ACTOR).card_id,
    "change_bank": lambda reg, jour, card, bank, new: (
        reg.change_bank(card, bank, _new_card(new), ACTOR).card_id
    ),
    "complete": lambda reg, jour, entry: jour.complete(entry, result="ok").state,
    "begin_many": lambda reg, jour, card, n: [
        jour.begin("race.begin", card_id=card, terminal="BJ-T-RACE", operator="op") for _ in range(n)
    ],
    "open": lambda reg, jour: "opened",
}


def _worker(
    url: str, now: datetime, barrier: Any, queue: Any, action: str, args: tuple[Any, ...], open_first: bool
) -> None:
    registry: Registry | None = None
    try:
        if not open_first:
            barrier.wait(timeout=60)
        registry, journal = open_registry(url, clock=lambda: now)
        if open_first:
            barrier.wait(timeout=60)
        try:
            queue.put(("ok", ACTIONS[action](registry, journal, *args)))
        except RegistryError as exc:
            queue.put(("refused", exc.error_id))
    except BaseException as exc:  # reported to the parent, which fails the test
        queue.put(("crash", repr(exc)))
    finally:
        if registry is not None:
            registry.close()


def race(
    url: str, calls: list[tuple[str, tuple[Any, ...]]], *, now: datetime = START, open_first: bool = True
) -> list[tuple[str, Any]]:
    """Run the calls in as many processes at once (all with the clock stopped at `now`)."""
    barrier = CTX.Barrier(len(calls))
    queue = CTX.Queue()
    procs = [
        CTX.Process(target=_worker, args=(url, now, barrier, queue, a, args, open_first)) for a, args in calls
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert not [r for r in results if r[0] == "crash"], results
    return results


def test_two_terminals_release_the_same_card(env: Env) -> None:
    for round_ in range(ROUNDS):
        card_id = env.active_card(serial=100 + round_, seq=round_)
        env.registry.report_loss_temporary(card_id, env.clerk)
        results = race(env.url, [("release", (card_id,))] * 4)
        assert Counter(r[0] for r in results) == {"ok": 1, "refused": 3}
        assert {r[1] for r in results if r[0] == "refused"} == {"card_not_lost"}
        events = [e.event for e in env.registry.history(card_id)]
        assert events.count("release_loss") == 1
        assert env.registry.card(card_id).status == "active"


def test_release_races_replacement(env: Env) -> None:
    for round_ in range(ROUNDS):
        card_id = env.active_card(serial=200 + round_, seq=round_)
        env.registry.report_loss_formal(card_id, env.clerk)
        calls = [("release", (card_id,))] * 3 + [
            ("replace", (card_id, env.card_id(300 + 10 * round_ + i))) for i in range(3)
        ]
        results = race(env.url, calls)
        outcome = Counter((r[0], r[1] if r[0] == "refused" else type(r[1]).__name__) for r in results)
        replaced_ok = [r for r in results if r[0] == "ok" and r[1] != "active"]
        released_ok = [r for r in results if r[0] == "ok" and r[1] == "active"]
        assert len(replaced_ok) == 1, outcome
        assert len(released_ok) <= 1, outcome
        refused = {r[1] for r in results if r[0] == "refused"}
        assert refused <= {"replaced_card_release_refused", "card_not_lost", "card_closed"}, outcome
        card = env.registry.card(card_id)
        assert card.status == "replaced" and card.replaced_by == replaced_ok[0][1]
        history = env.registry.history(card_id)
        for earlier, later in itertools.pairwise(history):
            assert later.from_status == earlier.to_status  # a serial order exists
        assert history[-1].event == "replace"


def test_two_terminals_change_the_bank_of_one_card(env: Env) -> None:
    card_id = env.active_card(serial=400)
    results = race(
        env.url,
        [
            ("change_bank", (card_id, bank, env.card_id(401 + i)))
            for i, bank in enumerate(["ICBC", "CCB", "ABC", "CMB"])
        ],
    )
    assert Counter(r[0] for r in results) == {"ok": 1, "refused": 3}
    assert {r[1] for r in results if r[0] == "refused"} == {"card_closed"}
    assert len(env.registry.cards_of(env.registry.card(card_id).ssn)) == 2


def test_bank_changes_of_two_cards_of_one_holder_respect_six_months(env: Env) -> None:
    ssn = env.holder(1)
    first = env.card(500, ssn, status="active", generation=2)
    second = env.card(501, ssn, status="active", generation=3)
    results = race(
        env.url,
        [
            ("change_bank", (first, "ICBC", env.card_id(502))),
            ("change_bank", (second, "CCB", env.card_id(503))),
        ],
    )
    assert sorted(r[0] for r in results) == ["ok", "refused"]
    assert [r[1] for r in results if r[0] == "refused"] == ["bank_change_too_soon"]


def test_two_terminals_complete_the_same_journal_entry(env: Env) -> None:
    for _ in range(ROUNDS):
        entry_id = env.journal.begin("race.complete", card_id=None, terminal="T", operator="o")
        results = race(env.url, [("complete", (entry_id,))] * 4)
        assert Counter(r[0] for r in results) == {"ok": 1, "refused": 3}
        assert {r[1] for r in results if r[0] == "refused"} == {"journal_entry_closed"}
        assert env.journal.entry(entry_id).state == "completed"


def test_parallel_journal_writers_lose_nothing(env: Env) -> None:
    card_id = env.card_id(600)
    results = race(env.url, [("begin_many", (card_id, 15))] * 4)
    ids = [i for r in results for i in r[1]]
    assert len(ids) == len(set(ids)) == 60
    assert sorted(e.id for e in env.journal.incomplete(card_id)) == sorted(ids)


def test_first_open_by_several_processes_at_once(fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    results = race(url, [("open", ())] * 4, open_first=False)
    assert [r[1] for r in results] == ["opened"] * 4
    registry, journal = open_registry(url)
    try:
        assert journal.query() == []
    finally:
        registry.close()
