"""Life cycle: ACTIVATE, APPLICATION BLOCK / UNBLOCK, CARD BLOCK, end of
personalisation, and what each state lets through."""

from __future__ import annotations

import pytest
from cardos_helpers import SELECT_SSSE, external_auth, make_card, sm_send, sw_of, tx
from cardos_personalise import sm2_complete

from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle


def state(card: object) -> int:
    data, sw = tx(card, "80CADF0100")
    assert sw == 0x9000
    return data[0]


def amk(card: object, ins: int, p1: int = 0, p2: int = 0) -> int:
    return sm_send(card, KeyRole.AMK, 0x84, ins, p1, p2)[1]  # type: ignore[arg-type]


def test_activate_once() -> None:
    card = make_card()
    assert state(card) == 0x01
    assert amk(card, 0x44) == 0x9000
    assert state(card) == 0x02
    assert amk(card, 0x44) == 0x6985


def test_activate_needs_mac_and_challenge() -> None:
    card = make_card()
    assert sw_of(card, "8444000004" + "00" * 4) == 0x6984
    assert sw_of(card, "8044000004" + "00" * 4) == 0x6982  # plain CLA of an SM command
    assert sm_send(card, KeyRole.PUK, 0x84, 0x44, 0, 0)[1] == 0x6988
    assert state(card) == 0x01


def test_temporary_block_and_unblock_returns_to_previous_state() -> None:
    card = make_card(life_cycle=LifeCycle.ACTIVE)
    assert amk(card, 0x1E, 0, 0) == 0x9000
    assert state(card) == 0x03
    assert tx(card, SELECT_SSSE)[1] == 0x6283
    assert tx(card, "00B2032C00")[1] == 0x9000  # EF05 still readable
    assert external_auth(card) == 0x9000  # allowed
    assert sw_of(card, "00B2083400") == 0x6A81  # EF06 not
    assert sw_of(card, "0020000103211008") == 0x6A81
    assert sw_of(card, "0088000110" + "00" * 16) == 0x6A81
    assert amk(card, 0x1E, 0, 0) == 0x6A81  # temporary block again: refused
    assert amk(card, 0x44) == 0x6A81
    assert amk(card, 0x18) == 0x9000
    assert state(card) == 0x02
    assert sw_of(card, "0020000103211008") == 0x9000


def test_unblock_from_personalised_goes_back_to_personalised() -> None:
    card = make_card()
    assert amk(card, 0x1E, 0, 0) == 0x9000
    assert amk(card, 0x18) == 0x9000
    assert state(card) == 0x01


def test_unblock_when_not_blocked() -> None:
    assert amk(make_card(), 0x18) == 0x6985


def test_permanent_block() -> None:
    card = make_card(life_cycle=LifeCycle.ACTIVE)
    assert amk(card, 0x1E, 0, 1) == 0x9000
    assert state(card) == 0x04
    assert tx(card, "00B2032C00")[1] == 0x9000
    assert sw_of(card, "00B2083400") == 0x9303
    assert sw_of(card, "0020000103211008") == 0x9303
    assert amk(card, 0x18) == 0x9303
    assert amk(card, 0x1E, 0, 0) == 0x9303
    assert amk(card, 0x1E, 0, 1) == 0x9000  # stays 04
    assert tx(card, SELECT_SSSE + "00")[1] == 0x9000


def test_permanent_block_from_temporary_block() -> None:
    card = make_card(life_cycle=LifeCycle.ACTIVE)
    amk(card, 0x1E, 0, 0)
    assert amk(card, 0x1E, 0, 1) == 0x9000
    assert state(card) == 0x04
    assert card.image.blocked_from is None


def test_temporary_block_not_from_blank() -> None:
    assert amk(make_card(life_cycle=LifeCycle.BLANK), 0x1E, 0, 0) == 0x6985


@pytest.mark.parametrize(
    "start", [LifeCycle.PERSONALISED, LifeCycle.TEMPORARILY_BLOCKED, LifeCycle.PERMANENTLY_BLOCKED]
)
def test_card_block_terminates(start: LifeCycle) -> None:
    card = make_card(life_cycle=start)
    assert amk(card, 0x16) == 0x9000
    assert tx(card, SELECT_SSSE + "00") == (b"", 0x6A81)
    assert sw_of(card, "00B2032C00") == 0x6A81
    assert sw_of(card, "80CADF0100") == 0x6A81
    assert sw_of(card, "0084000004") == 0x6A81
    assert card.image.life_cycle is LifeCycle.CARD_BLOCKED


@pytest.mark.parametrize(
    ("ins", "p1", "p2"), [(0x44, 0x02, 0), (0x44, 0, 1), (0x1E, 0, 2), (0x18, 1, 0), (0x16, 0, 1)]
)
def test_lifecycle_wrong_p1p2(ins: int, p1: int, p2: int) -> None:
    assert amk(make_card(), ins, p1, p2) == 0x6A86


def test_personalisation_done_needs_sm2_key_on_gen3() -> None:
    card = make_card(life_cycle=LifeCycle.BLANK)
    assert amk(card, 0x44, 0x01) == 0x6985
    tx(card, "804A010041")
    # the key pair alone is not enough: certificates and the encryption key too (§11)
    sm2_complete(card)
    assert amk(card, 0x44, 0x01) == 0x9000
    assert state(card) == 0x01
    assert amk(card, 0x44, 0x01) == 0x6985


def test_personalisation_done_gen2() -> None:
    card = make_card(2, life_cycle=LifeCycle.BLANK)
    assert amk(card, 0x44, 0x01) == 0x9000
    assert state(card) == 0x01
