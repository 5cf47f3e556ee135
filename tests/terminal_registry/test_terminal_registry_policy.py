"""The presentation gate's data and configuration errors (no card, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from terminal.presentation import OperationRule, Presentation, PresentationGate, PresentationPolicy
from terminal.registry import Actor, AgentInfo, catalog
from terminal.registry.errors import (
    AgentNotPermitted,
    CardRefused,
    InvalidActor,
    RegistryInputError,
    RegistryUnavailable,
    RegistryUrlInvalid,
)
from terminal.registry.models import Decision
from terminal.registry.rules import decide

CARD = "110102D156000005" + "0000000000000001"
AGENT_OPERATIONS = {"activate", "report_loss_temporary", "change_password", "query_status"}


def test_the_shipped_policy_is_consistent_with_the_registry() -> None:
    policy = PresentationPolicy.load()
    assert policy.block_mode("card_lost") == "temporary"
    for reason in ("card_replaced", "card_ss_cancelled", "card_ss_cancelled_long", "card_cancelled"):
        assert policy.block_mode(reason) == "permanent"
    blocking = {r.reason_id for r in catalog.reasons().values() if r.block_on_card}
    assert blocking <= set(policy.block_modes)  # every blocking reason has an explicit mode
    labels = catalog.operations()
    for name, rule in policy.operations.items():
        assert rule.registry_operation in labels, name  # refusal messages name it in Chinese
    open_to_agents = {n for n, r in policy.operations.items() if r.registry_operation in AGENT_OPERATIONS}
    assert open_to_agents == {
        "card.read_basic",
        "card.read_holder",
        "card.read",
        "card.read_national",
        "card.authenticate",
        "card.status",
        "pin.status",
        "pin.change",
        "card.activate",
        "card.block:temporary",
        "wallet.balance",
        "wallet.records",
        "ticket.show",
        "bankcard.read",
    }
    assert policy.rule("card.block", {"mode": "permanent"}).registry_operation == "block_permanent"
    assert policy.rule("card.future") == OperationRule("card.future", True, False)


def test_a_bad_block_mode_in_the_data_is_refused() -> None:
    with pytest.raises(RegistryInputError):
        PresentationPolicy.from_mapping(
            {
                "presentation": {"journal_operation": "card.present", "unblock_when_allowed": True},
                "block_mode": {"card_lost": "sometimes"},
                "operation": {},
            }
        )


def test_gate_configuration_errors() -> None:
    with pytest.raises(InvalidActor):
        PresentationGate(None, actor="op-001")  # type: ignore[arg-type]
    with pytest.raises(RegistryUrlInvalid):
        PresentationGate.open("mysql://db/sscard", actor=Actor("op", "T"))


def _decision(reason: str) -> Decision:
    return Decision(
        CARD, True, False, reason, "卡片已正式挂失，不能使用", "refused", -1161, frozenset(), True, "lost"
    )


def test_admission_order_and_errors() -> None:
    agent = Actor("op", "T", agent=AgentInfo("李四", "E1234567", "WT-1"))
    agent_gate = PresentationGate(None, actor=agent)
    refused = Presentation(CARD, "checked", _decision("card_lost"), "blocked", "temporary")
    with pytest.raises(CardRefused) as first:  # a refused card is refused before the agent rule
        agent_gate.admit(refused, "pin.reset")
    assert (first.value.national_code, first.value.blocked) == (-1161, True)
    agent_gate.admit(refused, "card.status")
    with pytest.raises(AgentNotPermitted):
        agent_gate.admit(Presentation(CARD, "not_configured"), "pin.reset")
    clerk_gate = PresentationGate(None, actor=Actor("op", "T"))
    down = Presentation(CARD, "unavailable", registry_error="registry_storage_error")
    clerk_gate.admit(down, "card.read_holder")
    with pytest.raises(RegistryUnavailable) as unavailable:
        clerk_gate.admit(down, "pin.change")
    assert "服务密码修改" in unavailable.value.message_zh
    unknown = Presentation(CARD, "checked", decide(None, CARD, datetime(2025, 6, 1, tzinfo=UTC)))
    assert unknown.to_dict()["allowed"] is True and unknown.refusal() is None
    clerk_gate.admit(unknown, "pin.reset")
