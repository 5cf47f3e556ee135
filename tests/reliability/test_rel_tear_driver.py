"""The tearing driver is not vacuous: a flow that changes the card without
journaling it, or leaves a mixed state it does not declare, fails it."""

from __future__ import annotations

import pytest
from rel_tear import TearFlow, clean_run, psam_source, tear_case

from apdu.command import CommandApdu
from apdu.tlv import encode_record
from card_model.demo import demo_card_image
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal.session import CardSession

PHONE = b"13900000000"


def _unjournaled_write(session: CardSession) -> None:
    command = session.prepare_secure(
        CommandApdu(0x00, 0xDC, 0x21, (7 << 3) | 0x04, encode_record(0x21, PHONE)), KeyRole.AMK
    )
    session.send(command)


def _active() -> CardOS:
    return CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE))


def test_a_write_without_its_journal_entry_is_caught() -> None:
    flow = TearFlow("bad.write", "card.write", _active, _unjournaled_write, lambda s, outcome: None)
    keys = psam_source()
    run = clean_run(flow, keys)
    assert run.apdus == 2
    tear_case(run, "tear_before", 2, key_source=keys)  # nothing written, nothing to journal: fine
    with pytest.raises(AssertionError, match="before the journal entry began"):
        tear_case(run, "tear_after", 2, key_source=keys)


def test_a_mixed_state_is_caught() -> None:
    """A write of two records torn between them leaves a mixed card: only a
    flow that declares it (``partial_states``) may do that."""
    from terminal import flows

    flow = TearFlow(
        "bad.write.two",
        "card.write",
        _active,
        lambda s: flows.write_generic(s, "3F00EF07|21|23|$", "13911112222|100088|"),
        lambda s, outcome: None,
    )
    keys = psam_source()
    run = clean_run(flow, keys)
    assert len({str(b) for b in run.boundaries}) == 3
    with pytest.raises(AssertionError, match="a mixed state"):
        tear_case(run, "tear_after", 2, key_source=keys)
