"""Life cycle, card status and key counters in process, over the real card OS."""

from __future__ import annotations

import pytest
from terminal_cards import card_os, inprocess_session, psam_source

from apdu.errors import (
    ApplicationBlocked,
    ApplicationPermanentlyBlocked,
    AuthenticationFailed,
    ConditionsNotSatisfied,
    InvalidInput,
    KeyLocked,
    SecureMessagingError,
)
from card_model.demo import demo_key_set
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from terminal import flows
from terminal.keysource import DevKeyFileKeySource


def wrong_keys() -> DevKeyFileKeySource:
    masters = {(a, r): bytes(range(16)) for (a, r) in demo_key_set().masters}
    with pytest.warns(UserWarning, match="NOT FOR PRODUCTION"):
        return DevKeyFileKeySource(IssuerKeySet(masters))


def test_activate_block_unblock_round() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    result = flows.activate(session)
    assert result.to_dict() == {
        "operation": "activate",
        "life_cycle_before": "personalised",
        "life_cycle": "active",
        "life_cycle_text": LifeCycle.ACTIVE.text,
    }
    with pytest.raises(ConditionsNotSatisfied):
        flows.activate(session)
    assert flows.block(session).after is LifeCycle.TEMPORARILY_BLOCKED
    with pytest.raises(ApplicationBlocked):
        flows.read_holder(session)
    unblocked = flows.unblock(session)
    assert (unblocked.before, unblocked.after) == (LifeCycle.TEMPORARILY_BLOCKED, LifeCycle.ACTIVE)
    assert flows.read_holder(session).gender == "1"


def test_unblock_returns_a_never_activated_card_to_personalised() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    flows.block(session)
    assert flows.unblock(session).after is LifeCycle.PERSONALISED


def test_permanent_block_cannot_be_released() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    flows.activate(session)
    assert flows.block(session, "permanent").after is LifeCycle.PERMANENTLY_BLOCKED
    with pytest.raises(ApplicationPermanentlyBlocked) as info:
        flows.unblock(session)
    assert info.value.national_code == -37635
    with pytest.raises(ApplicationPermanentlyBlocked):
        flows.verify_pin(session, "211008")
    assert flows.card_status(session).life_cycle is LifeCycle.PERMANENTLY_BLOCKED


def test_card_status_with_and_without_key_counters() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    status = flows.card_status(session)
    data = status.to_dict()
    assert data["life_cycle"] == "personalised" and data["generation"] == 3
    assert data["pin"] == {"state": "initial", "retries_left": 3, "max_tries": 3}
    assert {k["role"] for k in data["keys"]} >= {"IAK", "EAK", "RK", "AMK", "PRK", "PUK"}
    assert status.key("RK") is not None and status.key("RK").tries_left == 5  # type: ignore[union-attr]
    bare, _, _ = inprocess_session(card_os(3))
    assert flows.card_status(bare).to_dict()["keys"] is None


def test_external_auth_with_wrong_key_fails_and_the_counter_decreases() -> None:
    card = card_os(3)
    session, _, _ = inprocess_session(card, key_source=psam_source())
    bad = wrong_keys()
    for expected in (4, 3):
        with pytest.raises(AuthenticationFailed) as info:
            flows.read_holder(session, key_source=bad)
        assert info.value.retries_left == expected
        assert info.value.sw == 0x63C0 | expected
    assert flows.card_status(session).key("RK").tries_left == 3  # type: ignore[union-attr]
    flows.read_holder(session)
    assert flows.card_status(session).key("RK").tries_left == 5  # type: ignore[union-attr]


def test_key_locked_after_the_try_limit() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    bad = wrong_keys()
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            flows.read_holder(session, key_source=bad)
    with pytest.raises(KeyLocked):
        flows.read_holder(session)
    assert flows.card_status(session).key("RK").tries_left == 0  # type: ignore[union-attr]


def test_wrong_mac_decrements_the_maintenance_key() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    with pytest.raises(SecureMessagingError) as info:
        flows.activate(session, key_source=wrong_keys())
    assert info.value.sw == 0x6988
    assert flows.card_status(session).key("AMK").tries_left == 4  # type: ignore[union-attr]
    assert flows.card_status(session).life_cycle is LifeCycle.PERSONALISED


def test_blocked_mode_is_validated() -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=psam_source())
    with pytest.raises(InvalidInput) as info:
        flows.block(session, "forever")  # type: ignore[arg-type]
    assert info.value.national_code == -14
