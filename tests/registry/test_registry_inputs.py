"""Bad inputs: a clear, specific error and not a single row written (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from terminal.registry import Actor, AgentInfo, errors

if TYPE_CHECKING:
    from conftest import Env

BAD_SSNS = ["110102197305211009", "11010519491231002x", "1101021973052110", "abcdefghijklmnopqr"]


@pytest.mark.parametrize("bad", BAD_SSNS)
def test_invalid_ssn_writes_nothing(env: Env, bad: str) -> None:
    env.holder(1)
    error = env.refused(errors.InvalidSsn, env.registry.register_holder, bad, "张三")
    assert bad not in str(error) and bad not in error.message_zh  # type: ignore[attr-defined]
    env.refused(
        errors.InvalidSsn,
        env.registry.register_card,
        env.card_id(1),
        "X00000001",
        bad,
        3,
        "BOB",
        "2025-03-01",
        "2035-02-28",
    )


def test_unknown_card_for_every_operation(env: Env) -> None:
    env.active_card(1)
    unknown = env.card_id(404)
    clerk = env.clerk
    calls = [
        (env.registry.activate, (unknown, clerk)),
        (env.registry.report_loss_temporary, (unknown, clerk)),
        (env.registry.report_loss_formal, (unknown, clerk)),
        (env.registry.release_loss, (unknown, clerk)),
        (env.registry.replace, (unknown, env.new_card(2), clerk)),
        (env.registry.cancel_social_security, (unknown, clerk)),
        (env.registry.cancel_financial, (unknown, clerk)),
        (env.registry.change_bank, (unknown, "ICBC", env.new_card(2), clerk)),
        (env.registry.card, (unknown,)),
        (env.registry.history, (unknown,)),
    ]
    for call, args in calls:
        error = env.refused(errors.CardNotFound, call, *args)
        assert error.exit_code == 10 and unknown in str(error)  # type: ignore[attr-defined]


def test_invalid_card_id_for_every_operation(env: Env) -> None:
    env.active_card(1)
    bad = "110102D156000006" + "0" * 16
    for call in (
        env.registry.activate,
        env.registry.report_loss_temporary,
        env.registry.release_loss,
        env.registry.cancel_social_security,
    ):
        env.refused(errors.InvalidCardId, call, bad, env.clerk)
    env.refused(errors.InvalidCardId, env.registry.check_presented, bad)


def test_invalid_card_registrations(env: Env) -> None:
    ssn = env.holder(1)
    good = {
        "card_id": env.card_id(1),
        "card_number": "X00000001",
        "ssn": ssn,
        "generation": 3,
        "bank": "BOB",
        "issue_date": "2025-03-01",
        "expiry_date": "2035-02-28",
    }
    cases: list[tuple[type[Exception], dict[str, object]]] = [
        (errors.InvalidCardId, {"card_id": "00" * 16}),
        (errors.InvalidCardData, {"card_number": "X1"}),
        (errors.InvalidCardData, {"generation": 4}),
        (errors.UnknownBank, {"bank": "Citibank"}),
        (errors.InvalidCardData, {"issue_date": "2035-03-01"}),
        (errors.InvalidCardData, {"expiry_date": "28/02/2035"}),
        (errors.InvalidCardData, {"status": "lost"}),
        (errors.HolderNotFound, {"ssn": env.ssn(9)}),
    ]
    for expected, change in cases:
        env.refused(expected, lambda args=change: env.registry.register_card(**{**good, **args}))
    error = env.refused(
        errors.HolderNotFound, lambda: env.registry.register_card(**{**good, "ssn": env.ssn(9)})
    )
    assert env.ssn(9) not in str(error)


def test_invalid_holders(env: Env) -> None:
    env.refused(errors.InvalidHolderData, env.registry.register_holder, env.ssn(1), "")
    env.refused(
        errors.InvalidHolderData, lambda: env.registry.register_holder(env.ssn(1), "张三", gender="M")
    )
    env.refused(
        errors.InvalidCardData, lambda: env.registry.register_holder(env.ssn(1), "张三", birth_date="1973")
    )
    env.refused(errors.HolderNotFound, env.registry.holder, env.ssn(1))


def test_invalid_actors(env: Env) -> None:
    card_id = env.active_card(1)
    for actor in (
        Actor(operator="", terminal="T1"),
        Actor(operator="op", terminal=" "),
        Actor(operator="op\nx", terminal="T1"),
        Actor(operator="op", terminal="T1", agent=AgentInfo(name="李四", id_number="", authorisation="WT-1")),
        Actor(
            operator="op",
            terminal="T1",
            agent=AgentInfo(name="李" * 61, id_number="E1", authorisation="WT-1"),
        ),
        Actor(operator="o" * 201, terminal="T1"),
        "op-001",
    ):
        env.refused(errors.InvalidActor, env.registry.report_loss_temporary, card_id, actor)


def test_invalid_new_cards(env: Env) -> None:
    card_id = env.active_card(1)
    env.registry.report_loss_formal(card_id, env.clerk)
    env.refused(errors.InvalidCardData, env.registry.replace, card_id, "not a card", env.clerk)
    bad = env.new_card(2)
    env.refused(
        errors.InvalidCardId,
        env.registry.replace,
        card_id,
        type(bad)("1234", bad.card_number, 3, bad.issue_date, bad.expiry_date),
        env.clerk,
    )
    env.refused(
        errors.UnknownBank, env.registry.replace, card_id, env.new_card(2, bank="Barclays"), env.clerk
    )


def test_operation_in_the_wrong_state_names_the_state(env: Env) -> None:
    card_id = env.active_card(1)
    error = env.refused(errors.CardNotLost, env.registry.release_loss, card_id, env.clerk)
    assert "正常" in error.message_zh and "active" in str(error)  # type: ignore[attr-defined]
    assert error.national_code == -1126  # type: ignore[attr-defined]
