"""The terminal consults the registry when a card is presented, end to end over
pcscd + vpcd (card in slot 6, PSAM in slot 7): refusal, blocking on the card,
release, replacement, cancellation, registry outage, agents, the journal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import make_url
from terminal_registry_support import (
    AGENT,
    CARD_SLOT,
    CLERK,
    INITIAL_PIN,
    OTHER_TERMINAL,
    CuttableLink,
    TearingCard,
    Terminal,
    gen3_card,
    inserted,
    new_card_id,
    operations,
    register_demo,
)

from apdu.errors import ApplicationBlocked, ApplicationPermanentlyBlocked
from card_model.lifecycle import LifeCycle
from terminal import flows
from terminal.errors import TornOperation
from terminal.presentation import PresentationGate
from terminal.registry import NewCard, open_registry
from terminal.registry.errors import (
    AgentNotPermitted,
    CardRefused,
    RegistryUnavailable,
    ReplacedCardReleaseRefused,
)

MakeTerminal = Callable[[str], Terminal]


def test_lost_card_is_refused_blocked_and_works_again_after_release(
    make_terminal: MakeTerminal, any_url: str
) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    term.registry.report_loss_formal(card_id, OTHER_TERMINAL)
    card = gen3_card()
    with inserted(card, CARD_SLOT, term.reader):
        session = term.session()
        presented = session.presentation
        assert presented is not None and presented.refused
        assert presented.decision is not None and presented.decision.reason_id == "card_lost"
        assert (presented.enforcement, presented.block_mode) == ("blocked", "temporary")
        assert presented.life_cycle is LifeCycle.TEMPORARILY_BLOCKED
        with pytest.raises(CardRefused) as refused:
            flows.read_basic(session)
        error = refused.value
        assert (error.national_code, error.exit_code, error.reason_id, error.blocked) == (
            -1161,
            10,
            "card_lost",
            True,
        )
        assert error.message_zh == "卡片已正式挂失，不能使用" and card_id in str(error)
        assert error.to_dict()["reason"] == "card_lost"
        for flow in (flows.read_holder, lambda s: flows.verify_pin(s, INITIAL_PIN), flows.unblock):
            with pytest.raises(CardRefused):
                flow(session)
        assert flows.card_status(session).life_cycle is LifeCycle.TEMPORARILY_BLOCKED  # status: allowed
        session.close()

        plain = term.plain()  # a terminal without the registry: the card itself refuses
        assert plain.info.application_blocked
        assert flows.card_status(plain).life_cycle is LifeCycle.TEMPORARILY_BLOCKED
        with pytest.raises(ApplicationBlocked):
            flows.read_holder(plain)
        plain.close()

        again = term.session()
        assert again.presentation is not None and again.presentation.enforcement == "already_blocked"
        again.close()

        term.registry.release_loss(card_id, OTHER_TERMINAL)
        released = term.session()
        assert released.presentation is not None and not released.presentation.refused
        assert released.presentation.enforcement == "unblocked"
        assert released.presentation.life_cycle is LifeCycle.ACTIVE
        assert flows.read_holder(released).name == "张三"
        assert flows.verify_pin(released, INITIAL_PIN).status.verified
        released.close()

    assert operations(term.journal, card_id) == [
        ("registry.register_card", "ok", 0),
        ("registry.report_loss_formal", "ok", 0),
        ("card.present", "refused", -1161),
        ("card.block", "ok", 0),
        ("card.read_basic", "refused", -1161),
        ("card.read_holder", "refused", -1161),
        ("pin.verify", "refused", -1161),
        ("card.unblock", "refused", -1161),
        ("card.status", "ok", 0),
        ("card.status", "ok", 0),  # the plain session
        ("card.read_holder", "failed", -27265),  # 6A81 from the card itself
        ("card.present", "refused", -1161),
        ("registry.release_loss", "ok", 0),
        ("card.present", "ok", 0),
        ("card.unblock", "ok", 0),
        ("card.read_holder", "ok", 0),
        ("pin.verify", "ok", 0),
    ]
    entries = term.journal.query(card_id=card_id)
    block = next(e for e in entries if e.operation == "card.block")
    assert block.details == {"life_cycle_before": "active", "mode": "temporary", "reason": "card_lost"}
    assert (block.terminal, block.operator, block.agent) == (CLERK.terminal, CLERK.operator, None)
    present = entries[2]
    assert present.outcome_details == {
        "registry": "checked",
        "reason": "card_lost",
        "allowed": "false",
        "status": "lost",
    }
    assert [e for e in entries if e.operation == "card.unblock"][-1].details["reason"] == "card_ok"
    assert term.journal.incomplete(card_id) == []


def test_replaced_card_is_refused_and_blocked_for_good(make_terminal: MakeTerminal, any_url: str) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    term.registry.report_loss_formal(card_id, CLERK)
    with inserted(gen3_card(), CARD_SLOT, term.reader):
        term.session().close()  # presented while lost: temporarily blocked
        new = NewCard(new_card_id(0x20), "X00000020", 3, "2025-06-01", "2035-05-31")
        term.registry.replace(card_id, new, OTHER_TERMINAL)
        with pytest.raises(ReplacedCardReleaseRefused):
            term.registry.release_loss(card_id, OTHER_TERMINAL)
        session = term.session()
        presented = session.presentation
        assert presented is not None and presented.decision is not None
        assert presented.decision.reason_id == "card_replaced"
        assert (presented.enforcement, presented.block_mode) == ("blocked", "permanent")
        assert presented.life_cycle is LifeCycle.PERMANENTLY_BLOCKED
        with pytest.raises(CardRefused) as refused:
            flows.read_card_bas(session)
        assert refused.value.national_code == -1162 and "补换" in refused.value.message_zh
        session.close()
        plain = term.plain()
        assert flows.card_status(plain).life_cycle is LifeCycle.PERMANENTLY_BLOCKED
        with pytest.raises(ApplicationPermanentlyBlocked):  # 9303: nothing brings it back
            flows.unblock(plain)
        plain.close()
    blocks = [e for e in term.journal.query(card_id=card_id) if e.operation == "card.block"]
    assert [(b.details["mode"], b.details["reason"], b.result) for b in blocks] == [
        ("temporary", "card_lost", "ok"),
        ("permanent", "card_replaced", "ok"),
    ]
    assert term.registry.card(card_id).replaced_by == new_card_id(0x20)


@pytest.mark.parametrize(
    ("steps", "reason", "code"),
    [
        (("cancel_social_security",), "card_ss_cancelled", -1163),
        (("cancel_social_security", "cancel_financial"), "card_cancelled", -1164),
    ],
)
def test_cancelled_cards_are_blocked_permanently(
    make_terminal: MakeTerminal, any_url: str, steps: tuple[str, ...], reason: str, code: int
) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    for step in steps:
        getattr(term.registry, step)(card_id, CLERK)
    with inserted(gen3_card(), CARD_SLOT, term.reader):
        session = term.session()
        assert session.presentation is not None and session.presentation.decision is not None
        assert session.presentation.decision.reason_id == reason
        assert session.presentation.life_cycle is LifeCycle.PERMANENTLY_BLOCKED
        with pytest.raises(CardRefused) as refused:
            flows.read_basic(session)
        assert refused.value.national_code == code
        session.close()
    assert ("card.present", "refused", code) in operations(term.journal, card_id)


def test_temporary_loss_suspends_functions_without_blocking_and_lapses(
    make_terminal: MakeTerminal, any_url: str
) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    term.registry.report_loss_temporary(card_id, AGENT)
    with inserted(gen3_card(), CARD_SLOT, term.reader):
        session = term.session()
        presented = session.presentation
        assert presented is not None and not presented.refused and presented.enforcement == "none"
        assert presented.suspended == {"medical", "financial"}
        assert presented.to_dict()["decision"]["reason"] == "card_temporarily_lost"
        assert flows.read_holder(session).ssn == "110102197305211008"
        session.close()
        term.clock.advance(days=15)  # the report lapses by itself, nothing is run
        lapsed = term.session()
        assert lapsed.presentation is not None and lapsed.presentation.decision is not None
        assert lapsed.presentation.decision.reason_id == "temporary_loss_lapsed"
        assert lapsed.presentation.suspended == frozenset()
        assert flows.card_status(lapsed).life_cycle is LifeCycle.ACTIVE
        lapsed.close()


def test_registry_unavailable_then_restored(
    make_terminal: MakeTerminal, pg_url: str, sqlite_url: str, tmp_path: object
) -> None:
    """The fleet registry (PostgreSQL) is behind a link that goes down; the
    terminal's journal is local (SQLite).  Flows that need the registry are
    refused with registry_unavailable, the others keep working; the next
    presentation after the link is back enforces what was decided meanwhile."""
    term = make_terminal(sqlite_url)  # local journal (its registry tables stay unused)
    fleet, _ = open_registry(pg_url)
    card_id = register_demo(fleet, status="issued")
    url = make_url(pg_url)
    link = CuttableLink(url.host or "127.0.0.1", url.port or 5432)
    gate = PresentationGate.open(
        url.set(port=link.port).render_as_string(hide_password=False), actor=CLERK
    )  # opened at the first presentation: the terminal starts while the link is down
    try:
        with inserted(gen3_card(LifeCycle.PERSONALISED), CARD_SLOT, term.reader):
            session = term.session(gate=gate)
            presented = session.presentation
            assert presented is not None and presented.availability == "unavailable"
            assert presented.registry_error == "registry_storage_error" and not presented.refused
            assert flows.read_basic(session).card_number == "X00000019"
            assert flows.read_holder(session).name == "张三"
            assert flows.pin_status(session).state == "initial"
            for flow in (flows.activate, lambda s: flows.verify_pin(s, INITIAL_PIN)):
                with pytest.raises(RegistryUnavailable) as unavailable:
                    flow(session)
                error = unavailable.value
                assert (error.national_code, error.exit_code) == (-1166, 10)
                assert "登记库" in error.message_zh
            assert flows.card_status(session).life_cycle is LifeCycle.PERSONALISED  # nothing sent
            session.close()

            fleet.report_loss_formal(card_id, OTHER_TERMINAL)  # meanwhile, at the bank
            link.restore()
            restored = term.session(gate=gate)
            assert restored.presentation is not None and restored.presentation.availability == "checked"
            assert restored.presentation.enforcement == "blocked"
            restored.close()

            fleet.release_loss(card_id, OTHER_TERMINAL)
            link.cut()
            link.restore()  # dropped connections are replaced transparently
            active = term.session(gate=gate)
            assert active.presentation is not None and active.presentation.enforcement == "unblocked"
            assert flows.activate(active).after is LifeCycle.ACTIVE
            active.close()
    finally:
        link.cut()
        gate.close()
        fleet.close()
    assert operations(term.journal, card_id) == [
        ("card.present", "failed", -1166),
        ("card.read_basic", "ok", 0),
        ("card.read_holder", "ok", 0),
        ("pin.status", "ok", 0),
        ("card.activate", "refused", -1166),
        ("pin.verify", "refused", -1166),
        ("card.status", "ok", 0),
        ("card.present", "refused", -1161),
        ("card.block", "ok", 0),
        ("card.present", "ok", 0),
        ("card.unblock", "ok", 0),
        ("card.activate", "ok", 0),
    ]
    first = term.journal.query(card_id=card_id, operation="card.present")[0]
    assert first.outcome_details == {"registry": "unavailable", "registry_error": "registry_storage_error"}


def test_agent_may_only_activate_report_temporary_loss_change_password_and_query(
    make_terminal: MakeTerminal, any_url: str
) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry, status="issued")
    with inserted(gen3_card(LifeCycle.PERSONALISED), CARD_SLOT, term.reader):
        session = term.session(actor=AGENT)
        assert session.presentation is not None and session.presentation.suspended == {"medical"}
        assert flows.read_basic(session).card_number == "X00000019"
        assert flows.pin_status(session).state == "initial"
        assert flows.activate(session).after is LifeCycle.ACTIVE
        flows.change_pin(session, INITIAL_PIN, "135790")
        refused = [
            ("pin.reset", lambda: flows.reset_pin(session)),
            ("pin.unblock", lambda: flows.unblock_pin(session)),
            ("pin.verify", lambda: flows.verify_pin(session, "135790")),
            ("card.block", lambda: flows.block(session, "permanent")),
            ("card.write", lambda: flows.write_generic(session, "3F00EF07|21|$", "13512345678|")),
        ]
        for _operation, call in refused:
            with pytest.raises(AgentNotPermitted) as info:
                call()
            assert (info.value.national_code, info.value.exit_code) == (-1131, 10)
            assert "代办人不能办理" in info.value.message_zh
        status = flows.card_status(session)
        assert status.pin.state == "ok" and status.pin.retries_left == 3  # nothing reached the card
        assert flows.block(session, "temporary").after is LifeCycle.TEMPORARILY_BLOCKED
        with pytest.raises(AgentNotPermitted):
            flows.unblock(session)  # releasing a loss report: the holder in person
        session.close()
        # The registry knows nothing of this loss: it is the authority, so the
        # next presentation takes the block back (record a loss in the registry
        # to keep a card blocked).
        clerk = term.session()
        assert clerk.presentation is not None and clerk.presentation.enforcement == "unblocked"
        assert clerk.presentation.life_cycle is LifeCycle.ACTIVE
        clerk.close()
    entries = term.journal.query(card_id=card_id)
    by_agent = [e for e in entries if e.agent is not None and e.operation.startswith(("card.", "pin."))]
    assert [(e.operation, e.result, e.national_code) for e in by_agent] == [
        ("card.present", "ok", 0),
        ("card.read_basic", "ok", 0),
        ("pin.status", "ok", 0),
        ("card.activate", "ok", 0),
        ("pin.change", "ok", 0),
        *[(operation, "refused", -1131) for operation, _ in refused],
        ("card.status", "ok", 0),
        ("card.block", "ok", 0),
        ("card.unblock", "refused", -1131),
    ]
    assert {e.agent for e in by_agent} == {"李四 (110101***********X; WT-2025-0042)"}
    exported = term.journal.export("csv", card_id=card_id) + term.journal.export("json", card_id=card_id)
    assert "11010119800101002X" not in exported and "110102197305211008" not in exported
    last = entries[-1]
    assert (last.operation, last.result, last.agent) == ("card.unblock", "ok", None)
    assert last.details["reason"] == "card_not_activated"


def test_unknown_card_and_no_registry(make_terminal: MakeTerminal, any_url: str) -> None:
    term = make_terminal(any_url)
    with inserted(gen3_card(), CARD_SLOT, term.reader):
        unknown = term.session()
        assert unknown.presentation is not None and unknown.presentation.decision is not None
        assert unknown.presentation.decision.reason_id == "card_not_registered"
        assert flows.verify_pin(unknown, INITIAL_PIN).status.verified
        unknown.close()
        offline = term.session(gate=PresentationGate(None, actor=AGENT))
        assert offline.presentation is not None and offline.presentation.availability == "not_configured"
        assert flows.read_holder(offline).name == "张三"
        with pytest.raises(AgentNotPermitted):  # the agent rule needs no database
            flows.reset_pin(offline)
        offline.close()


def test_block_that_cannot_be_made_leaves_the_card_refused(make_terminal: MakeTerminal, any_url: str) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    term.registry.report_loss_formal(card_id, CLERK)
    with inserted(gen3_card(), CARD_SLOT, term.reader):
        session = term.session(key_source=None)  # no PSAM: no AMK for the block
        presented = session.presentation
        assert presented is not None and presented.enforcement == "failed"
        assert presented.enforcement_error == "no_psam" and presented.life_cycle is LifeCycle.ACTIVE
        with pytest.raises(CardRefused) as refused:
            flows.read_basic(session)
        assert refused.value.blocked is False
        session.close()
        blocked = term.session()  # with the PSAM, the next presentation blocks
        assert blocked.presentation is not None and blocked.presentation.enforcement == "blocked"
        blocked.close()
    blocks = [
        (e.result, e.national_code) for e in term.journal.query(card_id=card_id, operation="card.block")
    ]
    assert blocks == [("failed", -2201), ("ok", 0)]


def test_block_torn_at_presentation_is_settled_at_the_next(make_terminal: MakeTerminal, any_url: str) -> None:
    term = make_terminal(any_url)
    card_id = register_demo(term.registry)
    term.registry.report_loss_formal(card_id, CLERK)
    card = TearingCard(gen3_card())
    card.arm(0x1E)  # APPLICATION BLOCK executes, the card is pulled before it answers
    with inserted(card, CARD_SLOT, term.reader), pytest.raises(TornOperation) as torn:
        term.session()
    assert torn.value.operation == "card.block"
    assert [e.operation for e in term.journal.incomplete(card_id)] == ["card.block"]
    with inserted(card, CARD_SLOT, term.reader):
        session = term.session()
        presented = session.presentation
        assert presented is not None and presented.enforcement == "already_blocked"
        assert presented.to_dict()["settled"] == [
            {
                "entry_id": torn.value.entry_id,
                "operation": "card.block",
                "outcome": "applied",
                "result": "ok",
                "note": "the card is temporarily_blocked",
                "resolved": True,
            }
        ]
        session.close()
    block = term.journal.entry(torn.value.entry_id or 0)
    assert (block.state, block.resolution, block.result) == ("resolved", "card_state_applied", "ok")
    assert term.journal.incomplete(card_id) == []
