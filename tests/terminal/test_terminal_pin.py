"""Service password flows in process, over the real card OS."""

from __future__ import annotations

import pytest
from terminal_cards import card_os, inprocess_session, psam_source

from apdu.errors import InvalidInput, PinBlocked, PinEntryError, PinError, WrongData
from terminal import flows
from terminal.journal_hook import MemoryJournal

INITIAL = "211008"


def gen3(journal: MemoryJournal | None = None, holder: str | None = None):  # type: ignore[no-untyped-def]
    session, _, _ = inprocess_session(card_os(3, holder=holder), key_source=psam_source(), journal=journal)
    return session


def test_status_of_a_new_card_is_initial_and_spends_no_try() -> None:
    session = gen3()
    for _ in range(4):
        status = flows.pin_status(session)
    assert status.to_dict() == {"state": "initial", "retries_left": 3, "max_tries": 3}
    assert status.initial and not status.verified


def test_wrong_pin_counts_down_and_locks() -> None:
    journal = MemoryJournal()
    session = gen3(journal)
    for expected in (2, 1, 0):
        with pytest.raises(PinError) as info:
            flows.verify_pin(session, "000000")
        assert info.value.retries_left == expected
        assert info.value.national_code == -51
        assert info.value.sw == 0x63C0 | expected
    assert flows.pin_status(session).to_dict() == {"state": "blocked", "retries_left": 0, "max_tries": 3}
    with pytest.raises(PinBlocked) as blocked:
        flows.verify_pin(session, INITIAL)
    assert blocked.value.national_code == -52
    failed = [e for e in journal.entries if e.operation == "pin.verify"]
    assert [e.national_code for e in failed] == [-51, -51, -51, -52]
    assert all("000000" not in str(e.details) + str(e.outcome_details) for e in journal.entries)


def test_verify_right_pin_restores_tries() -> None:
    session = gen3()
    with pytest.raises(PinError):
        flows.verify_pin(session, "999999")
    result = flows.verify_pin(session, INITIAL)
    assert result.to_dict() == {
        "operation": "verify",
        "ok": True,
        "state": "initial",
        "retries_left": 3,
        "max_tries": 3,
    }
    assert flows.pin_status(session).retries_left == 3


def test_verify_for_transaction_refuses_the_initial_pin() -> None:
    session = gen3()
    with pytest.raises(PinEntryError) as info:
        flows.verify_pin(session, INITIAL, for_transaction=True)
    assert info.value.national_code == -35 and info.value.kind == "initial_pin_use"
    assert flows.pin_status(session).retries_left == 3
    with pytest.raises(PinEntryError):
        flows.ensure_transaction_allowed(session)


def test_change_refuses_the_initial_pin_and_then_changes() -> None:
    journal = MemoryJournal()
    session = gen3(journal)
    with pytest.raises(PinEntryError) as info:
        flows.change_pin(session, INITIAL, INITIAL)
    assert info.value.national_code == -36
    assert journal.last("pin.change").result == "refused"
    result = flows.change_pin(session, INITIAL, "135790")
    assert result.status.state == "ok"
    assert flows.pin_status(session).state == "ok"
    assert flows.verify_pin(session, "135790", for_transaction=True).retries_left == 3
    assert flows.ensure_transaction_allowed(session).state == "ok"


def test_change_with_given_ssn_needs_no_key_source() -> None:
    session, _, _ = inprocess_session(card_os(3))
    with pytest.raises(PinEntryError):
        flows.change_pin(session, INITIAL, INITIAL, ssn="110102197305211008")
    assert flows.change_pin(session, INITIAL, "864200", ssn="110102197305211008").status.state == "ok"


def test_change_with_wrong_old_pin_spends_a_try() -> None:
    session = gen3()
    with pytest.raises(PinError) as info:
        flows.change_pin(session, "000000", "135790")
    assert info.value.retries_left == 2


def test_change_to_the_same_pin_is_refused_by_the_card() -> None:
    session = gen3()
    flows.change_pin(session, INITIAL, "135790")
    with pytest.raises(WrongData):
        flows.change_pin(session, "135790", "135790")
    assert flows.pin_status(session).retries_left == 3


def test_reset_to_initial_and_to_chosen() -> None:
    session = gen3()
    flows.change_pin(session, INITIAL, "135790")
    result = flows.reset_pin(session)
    assert result.status.state == "initial"
    assert flows.pin_status(session).state == "initial"
    flows.verify_pin(session, INITIAL)
    chosen = flows.reset_pin(session, new_pin="246801")
    assert chosen.status.state == "ok"
    flows.verify_pin(session, "246801")
    with pytest.raises(PinEntryError) as info:
        flows.reset_pin(session, new_pin=INITIAL)
    assert info.value.national_code == -36


def test_reset_unblocks_a_blocked_pin() -> None:
    session = gen3()
    for _ in range(3):
        with pytest.raises(PinError):
            flows.verify_pin(session, "000000")
    flows.reset_pin(session)
    assert flows.pin_status(session).to_dict() == {"state": "initial", "retries_left": 3, "max_tries": 3}


def test_unblock_after_lockout_keeps_the_pin() -> None:
    session = gen3()
    flows.change_pin(session, INITIAL, "135790")
    for _ in range(3):
        with pytest.raises(PinError):
            flows.verify_pin(session, "000000")
    result = flows.unblock_pin(session)
    assert result.to_dict()["retries_left"] == 3 and result.status.state == "ok"
    flows.verify_pin(session, "135790")


def test_initial_pin_with_x_is_typed_as_printed() -> None:
    session = gen3(holder="x_long_name")
    assert flows.initial_pin_of("11010819850612101X") == "121010"
    assert flows.verify_pin(session, "12101X").retries_left == 3
    assert flows.verify_pin(session, "12101x").retries_left == 3
    with pytest.raises(PinEntryError):
        flows.change_pin(session, "12101X", "121010")


@pytest.mark.parametrize(
    ("pin", "error", "code"),
    [
        ("12345", PinEntryError, -33),
        ("1234567", PinEntryError, -33),
        ("12a456", InvalidInput, -41),
        ("", PinEntryError, -33),
    ],
)
def test_bad_pin_input_is_refused_before_the_card(pin: str, error: type[Exception], code: int) -> None:
    session = gen3()
    with pytest.raises(error) as info:
        flows.verify_pin(session, pin)
    assert info.value.national_code == code  # type: ignore[attr-defined]
    assert flows.pin_status(session).retries_left == 3
    with pytest.raises(error):
        flows.change_pin(session, INITIAL, pin)


def test_new_pin_may_not_contain_x() -> None:
    session = gen3()
    with pytest.raises(InvalidInput) as info:
        flows.change_pin(session, INITIAL, "12345X")
    assert info.value.national_code == -41


class _NoPinData:
    """A card without GET DATA DF02 (6A88): the status comes from VERIFY without data."""

    def __init__(self) -> None:
        self.inner = card_os(3)

    def atr(self) -> bytes:
        return self.inner.atr()

    def process(self, apdu: bytes) -> bytes:
        if apdu[:4] == bytes.fromhex("80CADF02"):
            return bytes.fromhex("6A88")
        return self.inner.process(apdu)


def test_status_without_get_data_uses_verify_status() -> None:
    session, _, _ = inprocess_session(_NoPinData(), key_source=psam_source())  # type: ignore[arg-type]
    with pytest.raises(PinError):
        flows.verify_pin(session, "000000")
    assert flows.pin_status(session).to_dict() == {"state": "ok", "retries_left": 2, "max_tries": 3}
    flows.verify_pin(session, INITIAL)
    assert flows.pin_status(session).verified
    for _ in range(3):
        with pytest.raises(PinError):
            flows.verify_pin(session, "000000")
    assert flows.pin_status(session).state == "blocked"
