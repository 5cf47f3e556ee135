"""Every Beijing rule of the registry, on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from terminal.registry import errors
from terminal.registry.rules import CardState, decide

if TYPE_CHECKING:
    from conftest import Env


FIFTEEN_DAYS = timedelta(days=15)
TINY = timedelta(microseconds=1)


# -- registration and presentation -------------------------------------------------


def test_registered_card_reads_back(env: Env) -> None:
    ssn = env.holder(1, "王小明")
    card_id = env.card(1, ssn, bank="北京银行")
    card = env.registry.card(card_id.lower())
    assert card.card_id == card_id
    assert (card.status, card.effective_status, card.bank, card.generation) == ("issued", "issued", "BOB", 3)
    assert card.holder_name == "王小明"
    assert card.ssn == ssn and card.ssn_masked == ssn[:6] + "*" * 11 + ssn[-1]
    assert ssn not in repr(card)
    assert env.registry.holder(ssn).name == "王小明"
    assert [c.card_id for c in env.registry.cards_of(ssn)] == [card_id]


def test_issued_card_works_except_medical_until_activated(env: Env) -> None:
    card_id = env.card(1, env.holder())
    decision = env.registry.check_presented(card_id)
    assert decision.allowed and not decision.block_on_card
    assert decision.reason_id == "card_not_activated"
    assert decision.suspended == {"medical"}


def test_active_card_is_allowed_without_suspension(env: Env) -> None:
    decision = env.registry.check_presented(env.active_card())
    assert (decision.allowed, decision.reason_id, decision.suspended, decision.national_code) == (
        True,
        "card_ok",
        frozenset(),
        0,
    )


def test_unknown_card_is_allowed_but_marked_unknown(env: Env) -> None:
    decision = env.registry.check_presented(env.card_id(999))
    assert decision.allowed and not decision.known and decision.reason_id == "card_not_registered"


def test_duplicates_are_refused(env: Env) -> None:
    ssn = env.holder()
    card_id = env.card(1, ssn)
    env.refused(errors.HolderAlreadyRegistered, env.registry.register_holder, ssn, "张三")
    env.refused(
        errors.CardAlreadyRegistered,
        env.registry.register_card,
        card_id,
        "X00000001",
        ssn,
        3,
        "BOB",
        "2025-03-01",
        "2035-02-28",
    )


# -- activation --------------------------------------------------------------------


def test_activation_and_double_activation(env: Env) -> None:
    card_id = env.card(1, env.holder())
    card = env.registry.activate(card_id, env.clerk)
    assert card.status == "active" and card.activated_at == env.clock.now
    env.refused(errors.CardAlreadyActive, env.registry.activate, card_id, env.clerk)


def test_activating_gen3_ends_medical_on_older_gen1_and_gen2_cards(env: Env) -> None:
    ssn = env.holder(1)
    gen1 = env.card(1, ssn, generation=1, status="active")
    gen2 = env.card(2, ssn, generation=2, status="active")
    gen3 = env.card(3, ssn, generation=3)
    other = env.card(4, env.holder(2), generation=2, status="active")
    assert env.registry.check_presented(gen2).reason_id == "card_ok"

    env.clock.advance(hours=1)
    env.registry.activate(gen3, env.clerk)

    for old in (gen1, gen2):
        decision = env.registry.check_presented(old)
        assert decision.allowed and decision.reason_id == "medical_moved_to_new_card"
        assert decision.suspended == {"medical"}
        record = env.registry.card(old)
        assert (record.medical_ended_at, record.medical_ended_by, record.status) == (
            env.clock.now,
            gen3,
            "active",
        )
        assert env.registry.history(old)[-1].event == "end_medical"
    assert env.registry.check_presented(gen3).reason_id == "card_ok"
    assert env.registry.check_presented(other).reason_id == "card_ok"


def test_activating_gen2_leaves_gen1_medical_alone(env: Env) -> None:
    ssn = env.holder(1)
    gen1 = env.card(1, ssn, generation=1, status="active")
    gen2 = env.card(2, ssn, generation=2)
    env.registry.activate(gen2, env.clerk)
    assert env.registry.check_presented(gen1).reason_id == "card_ok"


def test_medical_end_composes_with_a_temporary_loss(env: Env) -> None:
    ssn = env.holder(1)
    gen2 = env.card(2, ssn, generation=2, status="active")
    env.registry.activate(env.card(3, ssn, generation=3), env.clerk)
    env.registry.report_loss_temporary(gen2, env.clerk)
    decision = env.registry.check_presented(gen2)
    assert decision.reason_id == "card_temporarily_lost" and decision.suspended == {"medical", "financial"}


# -- temporary loss: 15 days from the recorded time --------------------------------------


def test_temporary_loss_suspends_medical_and_financial(env: Env) -> None:
    card_id = env.active_card()
    reported_at = env.clock.now
    card = env.registry.report_loss_temporary(card_id, env.clerk)
    assert card.status == "temp_lost" and card.temp_loss_until == reported_at + FIFTEEN_DAYS
    decision = env.registry.check_presented(card_id)
    assert decision.allowed and not decision.block_on_card
    assert decision.reason_id == "card_temporarily_lost"
    assert decision.suspended == {"medical", "financial"}
    assert decision.until == reported_at + FIFTEEN_DAYS
    assert "2025-03-16 10:00（北京时间）" in decision.message_zh


def test_temporary_loss_holds_until_just_before_15_days(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.clock.advance(days=15, microseconds=-1)
    assert env.registry.check_presented(card_id).reason_id == "card_temporarily_lost"
    assert env.registry.card(card_id).effective_status == "temp_lost"
    env.refused(errors.CardAlreadyLost, env.registry.report_loss_temporary, card_id, env.clerk)
    assert env.registry.release_loss(card_id, env.clerk).status == "active"


def test_temporary_loss_lapses_at_exactly_15_days(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.clock.advance(days=15)
    decision = env.registry.check_presented(card_id)
    assert decision.allowed and decision.reason_id == "temporary_loss_lapsed" and not decision.suspended
    card = env.registry.card(card_id)
    assert (card.status, card.effective_status, card.temp_loss_until) == ("temp_lost", "active", None)
    # nothing left to release; a new temporary report starts a new 15 days
    env.refused(errors.CardNotLost, env.registry.release_loss, card_id, env.clerk)
    again = env.registry.report_loss_temporary(card_id, env.clerk)
    assert again.temp_loss_until == env.clock.now + FIFTEEN_DAYS
    history = env.registry.history(card_id)
    assert [e.from_status for e in history[-1:]] == ["active"]


def test_lapse_uses_recorded_time_not_a_job(env: Env) -> None:
    """Reopening the registry later still sees the lapse: it is computed, not stored."""
    card_id = env.active_card()
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.clock.advance(days=40)
    from terminal.registry import open_registry

    later, _ = open_registry(env.url, clock=env.clock)
    try:
        assert later.check_presented(card_id).reason_id == "temporary_loss_lapsed"
    finally:
        later.close()


def test_temporary_loss_of_an_unactivated_card_returns_to_issued(env: Env) -> None:
    card_id = env.card(1, env.holder())
    env.registry.report_loss_temporary(card_id, env.clerk)
    assert env.registry.release_loss(card_id, env.clerk).status == "issued"
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.clock.advance(days=15)
    assert env.registry.check_presented(card_id).reason_id == "card_not_activated"


def test_agent_may_report_temporary_loss_and_is_recorded_masked(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_temporary(card_id, env.agent)
    event = env.registry.history(card_id)[-1]
    assert env.agent.agent is not None
    assert event.agent is not None and event.agent.startswith("李四 (")
    assert env.agent.agent.id_number not in event.agent
    assert env.agent.agent.id_number[:6] + "*" * 11 + env.agent.agent.id_number[-1] in event.agent
    entry = env.journal.query(card_id=card_id, operation="registry.report_loss_temporary")[-1]
    assert entry.agent == event.agent and entry.state == "completed"


# -- formal loss, release, replacement ------------------------------------------------


def test_formal_loss_refuses_and_blocks(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_formal(card_id, env.clerk)
    decision = env.registry.check_presented(card_id)
    assert not decision.allowed and decision.block_on_card
    assert decision.reason_id == "card_lost" and decision.national_code == -1161
    assert {"social_security", "medical", "financial"} <= decision.suspended
    env.refused(errors.CardAlreadyLost, env.registry.report_loss_formal, card_id, env.clerk)
    env.refused(errors.CardAlreadyLost, env.registry.report_loss_temporary, card_id, env.clerk)


def test_temporary_loss_can_become_formal_and_then_does_not_lapse(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.clock.advance(days=3)
    env.registry.report_loss_formal(card_id, env.clerk)
    env.clock.advance(days=30)
    assert env.registry.check_presented(card_id).reason_id == "card_lost"


def test_formal_loss_can_be_released_before_replacement(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_formal(card_id, env.clerk)
    env.clock.advance(days=100)
    assert env.registry.release_loss(card_id, env.clerk).status == "active"
    env.refused(errors.CardNotLost, env.registry.release_loss, card_id, env.clerk)


def test_replaced_card_can_never_be_released(env: Env) -> None:
    old = env.active_card(1)
    env.registry.report_loss_formal(old, env.clerk)
    new = env.registry.replace(old, env.new_card(2), env.clerk)
    assert (new.status, new.replaces, new.bank, new.generation) == ("issued", old, "BOB", 3)
    retired = env.registry.card(old)
    assert (retired.status, retired.replaced_by) == ("replaced", new.card_id)
    decision = env.registry.check_presented(old)
    assert not decision.allowed and decision.block_on_card and decision.reason_id == "card_replaced"
    for _ in range(2):
        env.refused(errors.ReplacedCardReleaseRefused, env.registry.release_loss, old, env.clerk)
        env.clock.advance(days=400)
    env.refused(errors.CardClosed, env.registry.replace, old, env.new_card(3), env.clerk)
    env.refused(errors.CardClosed, env.registry.activate, old, env.clerk)
    assert env.registry.history(new.card_id)[0].related_card_id == old


def test_card_in_hand_may_be_exchanged_but_temporarily_lost_one_needs_formal_report(env: Env) -> None:
    card_id = env.active_card(1)
    env.registry.report_loss_temporary(card_id, env.clerk)
    env.refused(errors.CardStateRefused, env.registry.replace, card_id, env.new_card(2), env.clerk)
    env.registry.release_loss(card_id, env.clerk)
    assert env.registry.replace(card_id, env.new_card(2), env.clerk).replaces == card_id


@pytest.mark.parametrize(
    ("old_gen", "new_gen", "ok"), [(3, 3, True), (3, 2, False), (2, 2, True), (2, 3, False), (1, 2, True)]
)
def test_replacement_generations_new_for_new_old_for_old(
    env: Env, old_gen: int, new_gen: int, ok: bool
) -> None:
    old = env.active_card(1, generation=old_gen)
    env.registry.report_loss_formal(old, env.clerk)
    if ok:
        assert env.registry.replace(old, env.new_card(2, generation=new_gen), env.clerk).generation == new_gen
    else:
        env.refused(
            errors.ReplacementGenerationRefused,
            env.registry.replace,
            old,
            env.new_card(2, generation=new_gen),
            env.clerk,
        )


def test_replacement_keeps_the_bank_and_needs_a_new_id(env: Env) -> None:
    old = env.active_card(1)
    other = env.active_card(5, seq=2)
    env.registry.report_loss_formal(old, env.clerk)
    env.refused(
        errors.ReplacementBankMismatch, env.registry.replace, old, env.new_card(2, bank="ICBC"), env.clerk
    )
    env.refused(errors.CardAlreadyRegistered, env.registry.replace, old, env.new_card(5), env.clerk)
    assert env.registry.card(other).status == "active"
    assert env.registry.replace(old, env.new_card(2, bank="北京银行"), env.clerk).bank == "BOB"


# -- cancellation ------------------------------------------------------------------


def test_financial_cancellation_only_after_social_security(env: Env) -> None:
    card_id = env.active_card()
    env.refused(errors.FinancialBeforeSocialSecurity, env.registry.cancel_financial, card_id, env.clerk)
    env.registry.cancel_social_security(card_id, env.clerk)
    decision = env.registry.check_presented(card_id)
    assert not decision.allowed and decision.block_on_card and decision.reason_id == "card_ss_cancelled"
    assert "financial" not in decision.suspended and "financial_non_counter" not in decision.suspended
    env.refused(errors.CardStateRefused, env.registry.cancel_social_security, card_id, env.clerk)
    assert env.registry.cancel_financial(card_id, env.clerk).status == "cancelled"
    decision = env.registry.check_presented(card_id)
    assert (
        decision.reason_id == "card_cancelled"
        and decision.block_on_card
        and "financial" in decision.suspended
    )
    env.refused(errors.CardClosed, env.registry.cancel_financial, card_id, env.clerk)
    env.refused(errors.CardClosed, env.registry.release_loss, card_id, env.clerk)


def test_six_months_after_social_security_cancellation_bank_may_restrict(env: Env) -> None:
    env.clock.now = datetime(2025, 8, 31, 4, 0, tzinfo=UTC)
    card_id = env.active_card()
    env.registry.cancel_social_security(card_id, env.clerk)
    env.clock.now = datetime(2026, 2, 28, 3, 59, tzinfo=UTC)
    assert env.registry.check_presented(card_id).reason_id == "card_ss_cancelled"
    env.clock.now = datetime(2026, 2, 28, 4, 0, tzinfo=UTC)
    decision = env.registry.check_presented(card_id)
    assert decision.reason_id == "card_ss_cancelled_long" and "financial_non_counter" in decision.suspended


def test_lost_card_may_be_cancelled(env: Env) -> None:
    card_id = env.active_card()
    env.registry.report_loss_formal(card_id, env.clerk)
    assert env.registry.cancel_social_security(card_id, env.clerk).status == "ss_cancelled"
    env.refused(errors.CardClosed, env.registry.release_loss, card_id, env.clerk)


# -- change of partner bank ------------------------------------------------------


def test_bank_change_cancels_old_card_and_issues_new(env: Env) -> None:
    old = env.active_card(1)
    new = env.registry.change_bank(old, "ICBC", env.new_card(2), env.clerk)
    assert (new.bank, new.status, new.replaces) == ("ICBC", "issued", old)
    assert env.registry.card(old).status == "cancelled"
    decision = env.registry.check_presented(old)
    assert not decision.allowed and decision.block_on_card and decision.reason_id == "card_cancelled"


def test_next_bank_change_only_six_calendar_months_later(env: Env) -> None:
    env.clock.now = datetime(2025, 8, 31, 4, 0, tzinfo=UTC)
    first = env.active_card(1)
    second = env.registry.change_bank(first, "ICBC", env.new_card(2), env.clerk).card_id
    env.registry.activate(second, env.clerk)
    env.clock.now = datetime(2026, 2, 28, 3, 59, 59, tzinfo=UTC)
    error = env.refused(
        errors.BankChangeTooSoon, env.registry.change_bank, second, "CCB", env.new_card(3), env.clerk
    )
    assert "2026-02-28 12:00" in error.message_zh  # type: ignore[attr-defined]
    env.clock.now = datetime(2026, 2, 28, 4, 0, tzinfo=UTC)
    assert env.registry.change_bank(second, "CCB", env.new_card(3), env.clerk).bank == "CCB"


def test_bank_change_refusals(env: Env) -> None:
    old = env.active_card(1)
    env.refused(errors.BankUnchanged, env.registry.change_bank, old, "北京银行", env.new_card(2), env.clerk)
    env.refused(errors.UnknownBank, env.registry.change_bank, old, "Bank of Mars", env.new_card(2), env.clerk)
    env.refused(
        errors.ReplacementGenerationRefused,
        env.registry.change_bank,
        old,
        "ICBC",
        env.new_card(2, generation=2),
        env.clerk,
    )
    env.refused(
        errors.InvalidCardData, env.registry.change_bank, old, "ICBC", env.new_card(2, bank="CCB"), env.clerk
    )
    env.registry.report_loss_temporary(old, env.clerk)
    env.refused(errors.CardStateRefused, env.registry.change_bank, old, "ICBC", env.new_card(2), env.clerk)


# -- agents --------------------------------------------------------------------


def test_agent_may_do_only_the_four_listed_operations(env: Env) -> None:
    card_id = env.card(1, env.holder())
    env.registry.authorize("change_password", env.agent)
    env.registry.authorize("query_status", env.agent)
    env.registry.activate(card_id, env.agent)
    env.registry.report_loss_temporary(card_id, env.agent)
    refused = [
        (env.registry.release_loss, (card_id, env.agent)),
        (env.registry.report_loss_formal, (card_id, env.agent)),
        (env.registry.replace, (card_id, env.new_card(2), env.agent)),
        (env.registry.cancel_social_security, (card_id, env.agent)),
        (env.registry.cancel_financial, (card_id, env.agent)),
        (env.registry.change_bank, (card_id, "ICBC", env.new_card(2), env.agent)),
    ]
    for call, args in refused:
        error = env.refused(errors.AgentNotPermitted, call, *args)
        assert error.exit_code == 10  # type: ignore[attr-defined]
    with pytest.raises(errors.AgentNotPermitted):
        env.registry.authorize("reset_password", env.agent)
    env.registry.authorize("reset_password", env.clerk)


# -- history and journal of registry changes -----------------------------------------


def test_history_is_a_consistent_chain_with_actors(env: Env) -> None:
    card_id = env.card(1, env.holder())
    env.registry.activate(card_id, env.clerk)
    env.registry.report_loss_temporary(card_id, env.agent)
    env.clock.advance(days=2)
    env.registry.report_loss_formal(card_id, env.clerk)
    env.registry.release_loss(card_id, env.clerk)
    env.registry.cancel_social_security(card_id, env.clerk)
    env.registry.cancel_financial(card_id, env.clerk)
    history = env.registry.history(card_id)
    assert [e.event for e in history] == [
        "register_card",
        "activate",
        "report_loss_temporary",
        "report_loss_formal",
        "release_loss",
        "cancel_social_security",
        "cancel_financial",
    ]
    for earlier, later in itertools.pairwise(history):
        assert later.from_status == earlier.to_status
    assert {e.terminal for e in history[1:]} == {env.clerk.terminal}
    assert env.registry.card(card_id).version == len(history)
    ops = [e.operation for e in env.journal.query(card_id=card_id)]
    assert ops == ["registry." + e.event for e in history]
    assert all(e.state == "completed" and e.result == "ok" for e in env.journal.query(card_id=card_id))


def test_card_state_version_is_checked(env: Env) -> None:
    """A write based on a stale read is refused (the optimistic check behind the row locks)."""
    from sqlalchemy import select

    from terminal.registry.schema import cards

    card_id = env.active_card()
    db = env.registry._db
    with db.read() as conn:
        stale = conn.execute(select(cards).where(cards.c.card_id == card_id)).one()
    env.registry.report_loss_temporary(card_id, env.clerk)
    with pytest.raises(errors.RegistryConflict), db.write() as conn:
        env.registry._update_card(conn, stale, {"status": "lost"})
    assert env.registry.card(card_id).status == "temp_lost"


# -- the pure rules (no database) ---------------------------------------------------


def test_decide_without_database_at_the_boundary() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    state = CardState("X", "temp_lost", start, start, None)
    assert decide(state, "X", start + FIFTEEN_DAYS - TINY).reason_id == "card_temporarily_lost"
    assert decide(state, "X", start + FIFTEEN_DAYS).reason_id == "temporary_loss_lapsed"


def test_presentation_policies_are_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from terminal.registry import catalog

    strict = replace(
        catalog.rules(), unknown_card_policy="refuse", suspends_after_lapse=frozenset({"financial"})
    )
    monkeypatch.setattr(catalog, "rules", lambda: strict)
    unknown = decide(None, "X", datetime(2025, 1, 1, tzinfo=UTC))
    assert (unknown.allowed, unknown.known, unknown.reason_id, unknown.national_code) == (
        False,
        False,
        "card_not_registered_refused",
        -1165,
    )
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lapsed = decide(CardState("X", "temp_lost", start, start, None), "X", start + FIFTEEN_DAYS)
    assert lapsed.reason_id == "temporary_loss_lapsed" and lapsed.suspended == {"financial"}
