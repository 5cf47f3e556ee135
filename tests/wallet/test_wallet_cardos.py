"""The purse, the financial application and the park ticket rule of the
virtual card OS: every command and status word (docs/card-os.md §12)."""

from __future__ import annotations

import pytest
from wallet_helpers import (
    DATE,
    PURSE_NAME,
    SEQUENCE,
    TERMINAL,
    TIME,
    LoadInit,
    active_card,
    active_image,
    apdu,
    balance,
    card_key,
    credit_apdu,
    debit_apdu,
    do_load,
    do_purchase,
    init_load,
    init_purchase,
    select_purse,
    send,
    sw,
)

from apdu.tlv import parse_one
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.purse import (
    TYPE_LOAD,
    TYPE_PURCHASE,
    PurseState,
    TransactionRecord,
    load_mac1_data,
    load_seed,
    load_tac_data,
    purchase_mac2_data,
    purchase_tac_data,
    session_mac,
    tac_mac,
)
from card_model.store import MemoryStore
from emulator.card_os import CardOS

PPSE = "325041592E5359532E4444463031"
PSE = "315041592E5359532E4444463031"
AID = "A000000333010101"


@pytest.fixture
def card() -> CardOS:
    c = active_card()
    select_purse(c)
    return c


# -- SELECT ---------------------------------------------------------------------------------------


def test_select_purse_answers_the_fci_and_0c_nothing() -> None:
    card = active_card()
    fci = parse_one(select_purse(card))
    assert fci.find(0x84).value == PURSE_NAME  # type: ignore[union-attr]
    assert fci.find(0x9F12).value.decode("gbk") == "交通钱包"  # type: ignore[union-attr]
    assert send(card, apdu(0x00, 0xA4, 0x04, 0x0C, PURSE_NAME)) == (b"", 0x9000)


def test_select_on_a_card_without_purse_and_blocked_card() -> None:
    gen1 = active_card(1)
    assert sw(gen1, apdu(0x00, 0xA4, 0x04, 0x00, PURSE_NAME, 0)) == 0x6A82
    blocked = active_card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    data, status = send(blocked, apdu(0x00, 0xA4, 0x04, 0x00, PURSE_NAME, 0))
    assert status == 0x6283 and data.startswith(b"\x6f")
    assert sw(blocked, "805C000204") == 0x6A81
    assert sw(blocked, "00B201C400") == 0x6A81
    image = active_image()
    del image.binary_files[card_model_state_fid()]
    assert sw(CardOS(image), apdu(0x00, 0xA4, 0x04, 0x00, PURSE_NAME, 0)) == 0x6A82


def card_model_state_fid() -> int:
    from card_model.profile import load_profile

    spec = load_profile("gen3").applications.purse
    assert spec is not None
    return spec.state_fid


def test_purse_commands_need_the_purse_selected() -> None:
    card = active_card()
    for command in ("805C000204", "80500002 0B 01 000003E8 110102000001 10", "805A000202000008"):
        assert sw(card, command) == 0x6985
    select_purse(card)
    assert balance(card) == 0
    assert sw(card, "00A40000023F0000") == 0x9000
    assert sw(card, "805C000204") == 0x6985
    assert sw(card, "00B201C400") == 0x6A82  # SFI 0x18 is not a file of the social security application


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (LifeCycle.BLANK, 0x6985),
        (LifeCycle.PERSONALISED, 0x6985),
        (LifeCycle.PERMANENTLY_BLOCKED, 0x9303),
    ],
)
def test_purse_commands_by_life_cycle(state: LifeCycle, expected: int) -> None:
    card = (
        active_card(life_cycle=state)
        if state is not LifeCycle.BLANK
        else CardOS(active_image(life_cycle=state))
    )
    send(card, apdu(0x00, 0xA4, 0x04, 0x00, PURSE_NAME, 0))
    for command in (
        "805C000204",
        "80500002 0B 01 000003E8 110102000001 10",
        "805A000202000008",
        "80520000 0B 20260301 081500 00000000 04",
    ):
        assert sw(card, command) == expected


# -- GET BALANCE -------------------------------------------------------------------------------------


def test_get_balance_and_its_errors(card: CardOS) -> None:
    assert send(card, "805C000204") == (bytes(4), 0x9000)
    assert send(card, "805C0002") == (bytes(4), 0x9000)
    assert sw(card, "805C000104") == 0x6A86
    assert sw(card, "805C010204") == 0x6A86
    assert sw(card, "805C0002 01 00") == 0x6700
    assert sw(card, "805C000208") == 0x6C04


# -- load ---------------------------------------------------------------------------------------------


def test_load_mac1_credit_tac_and_state(card: CardOS) -> None:
    data, status = init_load(card, 1000)
    assert status == 0x9000
    init = LoadInit.parse(data)
    assert (init.balance, init.counter, init.key_version, init.algorithm_id) == (0, 0, 1, 0x04)
    lk = card_key(card, KeyRole.LK)
    seed = load_seed(init.random, 0)
    assert session_mac(lk, Algorithm.SM4, seed, load_mac1_data(0, 1000, TYPE_LOAD, TERMINAL)) == init.mac1
    tac, status = send(card, credit_apdu(card, init, 1000))
    assert status == 0x9000
    tk = card_key(card, KeyRole.TK)
    assert tac == tac_mac(tk, Algorithm.SM4, load_tac_data(1000, 0, 1000, TYPE_LOAD, TERMINAL, DATE, TIME))
    assert balance(card) == 1000
    record, status = send(card, "00B201C417")
    assert status == 0x9000
    assert TransactionRecord.from_bytes(record) == TransactionRecord(0, 1000, TYPE_LOAD, TERMINAL, DATE, TIME)
    assert LoadInit.parse(init_load(card, 1)[0]).counter == 1


def test_initialize_for_load_errors(card: CardOS) -> None:
    assert sw(card, "80500302 0B 01 000003E8 110102000001 10") == 0x6A86
    assert sw(card, "80500001 0B 01 000003E8 110102000001 10") == 0x6A86
    assert sw(card, "80500002 0A 01 000003E8 1101020000 10") == 0x6700
    assert init_load(card, 1000, key_index=2)[1] == 0x9403
    assert init_load(card, 0)[1] == 0x6A80
    assert init_load(card, 1000, terminal=bytes.fromhex("1101020000AB"))[1] == 0x6A80
    assert init_load(card, 100_001)[1] == 0x6A84
    assert init_load(card, 100_000)[1] == 0x9000
    assert sw(card, "80500002 0B 01 000003E8 110102000001 08") == 0x6C10


def test_load_up_to_the_limit_exactly_then_refused(card: CardOS) -> None:
    do_load(card, 99_999)
    do_load(card, 1)
    assert balance(card) == 100_000
    assert init_load(card, 1)[1] == 0x6A84


def test_credit_for_load_errors_and_key_counter(card: CardOS) -> None:
    assert sw(card, "80520000 0B 20260301 081500 00000000 04") == 0x6985
    init = LoadInit.parse(init_load(card, 500)[0])
    assert sw(card, credit_apdu(card, init, 500, wrong=True)) == 0x9302
    lk = card.profile.key_for_role(KeyRole.LK)
    assert lk is not None and card.image.keys[lk.kid].tries_left == 4
    assert sw(card, credit_apdu(card, init, 500)) == 0x6985  # the INITIALIZE was consumed
    assert balance(card) == 0
    init = LoadInit.parse(init_load(card, 500)[0])
    assert sw(card, "80520100 0B 20260301 081500 00000000 04") == 0x6A86
    init = LoadInit.parse(init_load(card, 500)[0])
    assert sw(card, "80520000 07 20260301 081500 04") == 0x6700
    init = LoadInit.parse(init_load(card, 500)[0])
    assert sw(card, "80520000 0B 2026030A 081500 00000000 04") == 0x6A80
    init = LoadInit.parse(init_load(card, 500)[0])
    good = credit_apdu(card, init, 500)
    assert sw(card, good[:-1] + b"\x08") == 0x6C04  # not executed
    assert send(card, good)[1] == 0x9000  # the resend with the right Le is
    assert balance(card) == 500 and card.image.keys[lk.kid].tries_left == 5


def test_load_key_locks_after_the_try_limit(card: CardOS) -> None:
    for _ in range(5):
        init = LoadInit.parse(init_load(card, 100)[0])
        assert sw(card, credit_apdu(card, init, 100, wrong=True)) == 0x9302
    assert init_load(card, 100)[1] == 0x6983


def test_counter_limit(card: CardOS) -> None:
    spec = card.profile.applications.purse
    assert spec is not None
    state = PurseState(balance=500, online_counter=0xFFFF, offline_counter=0xFFFF)
    card.image.binary_files[spec.state_fid].content[:] = state.to_bytes()
    assert init_load(card, 1)[1] == 0x9402
    assert init_purchase(card, 1)[1] == 0x9402


# -- purchase ----------------------------------------------------------------------------------------


def test_purchase_debit_tac_mac2_and_state(card: CardOS) -> None:
    do_load(card, 2000)
    data, status = init_purchase(card, 350)
    assert status == 0x9000 and len(data) == 15
    assert int.from_bytes(data[:4], "big") == 2000 and data[4:6] == b"\x00\x00" and data[6:9] == bytes(3)
    assert data[9:11] == b"\x01\x04"
    command, seed = debit_apdu(card, data, 350)
    answer, status = send(card, command)
    assert status == 0x9000
    tac, mac2 = answer[:4], answer[4:]
    assert mac2 == session_mac(card_key(card, KeyRole.PK), Algorithm.SM4, seed, purchase_mac2_data(350))
    assert tac == tac_mac(
        card_key(card, KeyRole.TK),
        Algorithm.SM4,
        purchase_tac_data(350, TYPE_PURCHASE, TERMINAL, SEQUENCE, DATE, TIME),
    )
    assert balance(card) == 1650
    newest = TransactionRecord.from_bytes(send(card, "00B201C400")[0])
    assert (newest.tx_type, newest.counter, newest.amount) == (TYPE_PURCHASE, 0, 350)


def test_purchase_errors(card: CardOS) -> None:
    assert init_purchase(card, 1)[1] == 0x9401
    do_load(card, 100)
    assert init_purchase(card, 101)[1] == 0x9401
    assert sw(card, "80540100 0F 00000007 20260301 081500 00000000 08") == 0x6985
    data = init_purchase(card, 100)[0]
    command, _ = debit_apdu(card, data, 100, wrong=True)
    assert sw(card, command) == 0x9302
    pk = card.profile.key_for_role(KeyRole.PK)
    assert pk is not None and card.image.keys[pk.kid].tries_left == 4
    data = init_purchase(card, 100)[0]
    assert sw(card, "80540000 0F 00000007 20260301 081500 00000000 08") == 0x6A86
    data = init_purchase(card, 100)[0]
    assert sw(card, "80540100 0B 00000007 20260301 00000000 08") == 0x6700
    LoadInit.parse(init_load(card, 1)[0])  # a pending load is not a purchase
    command, _ = debit_apdu(card, data, 100)
    assert sw(card, command) == 0x6985
    assert balance(card) == 100


# -- GET TRANSACTION PROVE ------------------------------------------------------------------------------


def test_get_transaction_prove(card: CardOS) -> None:
    assert sw(card, "805A000202000008") == 0x9406
    tac = do_load(card, 700)
    proof, status = send(card, "805A000202000008")
    assert status == 0x9000 and proof[4:] == tac
    assert sw(card, "805A000202000108") == 0x9406
    answer = do_purchase(card, 200)
    proof, status = send(card, "805A000602000008")
    assert status == 0x9000 and proof == answer[4:] + answer[:4]
    assert sw(card, "805A000102000008") == 0x6A86
    assert sw(card, "805A010202000008") == 0x6A86
    assert sw(card, "805A0002 01 00 08") == 0x6700
    assert sw(card, "805A000202000004") == 0x6C08


# -- the transaction file ------------------------------------------------------------------------------


def test_transaction_file_is_cyclic_newest_first(card: CardOS) -> None:
    assert sw(card, "00B2010400") == 0x6986  # no current file yet
    assert sw(card, "00B201C400") == 0x6A83
    for amount in range(1, 13):
        do_load(card, amount)
    records = send(card, "00B201C500")[0]
    assert len(records) == 10 * 23
    amounts = [TransactionRecord.from_bytes(records[i : i + 23]).amount for i in range(0, 230, 23)]
    assert amounts == list(range(12, 2, -1))
    assert TransactionRecord.from_bytes(send(card, "00B2010400")[0]).amount == 12  # the current file now
    assert sw(card, "00B20BC400") == 0x6A83
    assert sw(card, "00B200C400") == 0x6A86
    assert sw(card, "00B201C600") == 0x6A86
    assert sw(card, "00B201CC00") == 0x6A82
    assert sw(card, "00B201C410") == 0x6C17


def test_reset_and_select_end_a_pending_initialize(card: CardOS) -> None:
    init = LoadInit.parse(init_load(card, 100)[0])
    card.reset()
    select_purse(card)
    assert sw(card, credit_apdu(card, init, 100)) == 0x6985
    init = LoadInit.parse(init_load(card, 100)[0])
    select_purse(card)
    assert sw(card, credit_apdu(card, init, 100)) == 0x6985


def test_state_is_committed_before_the_answer() -> None:
    store = MemoryStore()
    card = CardOS(active_image(), store=store)
    card.power_on()
    select_purse(card)
    commits = len(store.commits)
    init_load(card, 300)
    assert len(store.commits) == commits  # INITIALIZE changes nothing persistent
    data, _ = init_load(card, 300)
    send(card, credit_apdu(card, LoadInit.parse(data), 300))
    assert len(store.commits) == commits + 1
    again = CardOS(store.load(), store=store)  # type: ignore[arg-type]
    again.power_on()
    select_purse(again)
    assert balance(again) == 300


def test_generation_2_purse_uses_3des() -> None:
    card = active_card(2)
    select_purse(card)
    data, status = init_load(card, 800)
    init = LoadInit.parse(data)
    assert status == 0x9000 and init.algorithm_id == 0x00
    seed = load_seed(init.random, 0)
    lk = card_key(card, KeyRole.LK)
    assert session_mac(lk, Algorithm.TDES, seed, load_mac1_data(0, 800, TYPE_LOAD, TERMINAL)) == init.mac1
    tac, status = send(card, credit_apdu(card, init, 800))
    assert status == 0x9000
    tk = card_key(card, KeyRole.TK)
    assert tac == tac_mac(tk, Algorithm.TDES, load_tac_data(800, 0, 800, TYPE_LOAD, TERMINAL, DATE, TIME))
    do_purchase(card, 300)
    assert balance(card) == 500


# -- the financial application -------------------------------------------------------------------------


def test_ppse_pse_application_gpo_and_record() -> None:
    card = active_card(interface="contactless")
    fci = parse_one(send(card, f"00A40400 0E {PPSE} 00")[0])
    entry = fci.find(0x61)
    assert entry is not None and entry.find(0x4F).value.hex().upper() == AID  # type: ignore[union-attr]
    assert sw(card, "00B2010C00") == 0x6A82  # the PPSE has no files
    pse = parse_one(send(card, f"00A40400 0E {PSE} 00")[0])
    assert pse.find(0x88).value == b"\x01"  # type: ignore[union-attr]
    directory = parse_one(send(card, "00B2010C00")[0])
    assert directory.tag == 0x70 and directory.find(0x4F).value.hex().upper() == AID  # type: ignore[union-attr]
    assert sw(card, "00B2020C00") == 0x6A83
    assert sw(card, "80A8000002830000") == 0x6985  # no application selected yet
    app = parse_one(send(card, f"00A40400 08 {AID} 00")[0])
    assert app.find(0x50).value == b"UnionPay Debit"  # type: ignore[union-attr]
    assert sw(card, "00B2010C00") == 0x6985  # before GET PROCESSING OPTIONS
    assert sw(card, "80A80000028301 00") == 0x6A80
    assert sw(card, "80A8010002830000") == 0x6A86
    assert send(card, "80A8000002830000") == (bytes.fromhex("800600000801 0100".replace(" ", "")), 0x9000)
    record = parse_one(send(card, "00B2010C00")[0])
    pan = record.find(0x5A)
    assert pan is not None and pan.value.hex().startswith("629113")
    assert sw(card, "00B2020C00") == 0x6A83
    assert sw(card, "00B2011400") == 0x6A82
    assert sw(card, "00B2010D00") == 0x6A86
    assert sw(card, "00B2010C10") == 0x6C26


def test_financial_application_in_other_states_and_without_record() -> None:
    personalised = active_card(life_cycle=LifeCycle.PERSONALISED)
    send(personalised, f"00A40400 08 {AID} 00")
    assert sw(personalised, "80A8000002830000") == 0x9000  # the bank application does not wait for activation
    blocked = active_card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    assert sw(blocked, f"00A40400 08 {AID} 00") == 0x9000
    assert sw(blocked, "80A8000002830000") == 0x6A81  # temporary loss report: financial use suspended
    image = active_image()
    from card_model.profile import load_profile

    financial = load_profile("gen3").applications.financial
    assert financial is not None
    del image.record_files[financial.record_fid]
    assert sw(CardOS(image), f"00A40400 0E {PPSE} 00") == 0x6A82


# -- the park ticket record ------------------------------------------------------------------------------


def _ticket_update(card: CardOS) -> bytes:
    from apdu.command import CommandApdu
    from apdu.sm import iv_from_challenge, wrap_command
    from emulator.card_os.security import KeyMac

    challenge = send(card, "0084000004")[0]
    command = CommandApdu(
        0x00,
        0xDC,
        0x01,
        (21 << 3) | 4,
        bytes((0x01, 21)) + bytes.fromhex("2026" + "20260101" + "20261231") + b"1" + TERMINAL + DATE,
    )
    amk = card.profile.key_for_role(KeyRole.AMK)
    assert amk is not None
    return wrap_command(command, iv_from_challenge(challenge, 16), KeyMac(card.key_object(amk.kid))).encode()


def test_ticket_record_needs_an_active_card() -> None:
    personalised = active_card(life_cycle=LifeCycle.PERSONALISED)
    assert sw(personalised, _ticket_update(personalised)) == 0x6985
    assert sw(personalised, "00B201AC00") == 0x6A83  # readable, empty
    card = active_card()
    assert sw(card, _ticket_update(card)) == 0x9000
    data, status = send(card, "00B201AC00")
    assert status == 0x9000 and data[:2] == b"\x01\x15" and data[2:4] == b"\x20\x26"
    blocked = active_card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED)
    assert sw(blocked, "00B201AC00") == 0x6A81
