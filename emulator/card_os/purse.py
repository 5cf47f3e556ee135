"""The transport wallet on the virtual card: a PBOC-style electronic purse
(docs/card-os.md §12, docs/wallet.md).

The purse is an application selected by its DF name (profile ``[purse]``);
its commands (CLA ``80``) need it selected, else ``6985``:

* GET BALANCE ``80 5C 00 02 04`` -> balance (4 bytes, fen);
* INITIALIZE FOR LOAD ``80 50 00 02 0B <key index> <amount> <terminal>``
  -> old balance, online counter, key version, algorithm id, random, MAC1;
* CREDIT FOR LOAD ``80 52 00 00 0B <date> <time> <MAC2>`` -> TAC;
* INITIALIZE FOR PURCHASE ``80 50 01 02 0B <key index> <amount> <terminal>``
  -> old balance, offline counter, overdraft limit, key version, algorithm
  id, random;
* DEBIT FOR PURCHASE ``80 54 01 00 0F <terminal seq> <date> <time> <MAC1>``
  -> TAC, MAC2;
* GET TRANSACTION PROVE ``80 5A 00 <type> 02 <counter>`` -> MAC, TAC of the
  last load (type 02) / purchase (06) if it had that counter, else ``9406``;
* READ RECORD of the cyclic transaction file (SFI of the profile, record 1
  the newest, 23 bytes each).

Status words: ``6A80`` zero amount or non-BCD terminal/date/time, ``6A84``
a load that would pass the balance limit, ``9401`` insufficient balance,
``9402`` counter exhausted, ``9403`` unknown key index, ``9302`` MAC wrong
(the key's try counter falls; at 0 the key answers ``6983``), ``9406`` no
such transaction, ``6985`` no purse selected / no pending INITIALIZE.
A pending INITIALIZE ends with CREDIT / DEBIT (whatever their outcome),
another INITIALIZE, a SELECT or a reset.  Balance, counters, records and
the last-transaction proof are committed together before the answer.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from card_model.errors import ImageError
from card_model.image import KeyState
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.purse import (
    BCD_DATE_LENGTH,
    BCD_TIME_LENGTH,
    MAC_LENGTH,
    TERMINAL_LENGTH,
    TYPE_LOAD,
    TYPE_PURCHASE,
    LastTransaction,
    PurseSpec,
    PurseState,
    TransactionRecord,
    load_mac1_data,
    load_mac2_data,
    load_seed,
    load_tac_data,
    purchase_mac1_data,
    purchase_mac2_data,
    purchase_seed,
    purchase_tac_data,
    session_mac,
    tac_mac,
)
from emulator.card_os.command import Command
from emulator.card_os.response import SHORT_MAX
from emulator.card_os.security import usable_key
from emulator.card_os.sw import (
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_FILE_NOT_FOUND,
    SW_MEMORY_FAILURE,
    SW_NO_CURRENT_EF,
    SW_NOT_ENOUGH_MEMORY,
    SW_RECORD_NOT_FOUND,
    SW_WRONG_DATA,
    SW_WRONG_LE,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CardStatus,
)

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = [
    "PurseSession",
    "credit_for_load",
    "debit_for_purchase",
    "get_balance",
    "get_transaction_prove",
    "initialize",
    "read_record",
    "select",
]

SW_MAC_INVALID = 0x9302
SW_INSUFFICIENT_BALANCE = 0x9401
SW_COUNTER_LIMIT = 0x9402
SW_KEY_INDEX = 0x9403
SW_NO_TRANSACTION = 0x9406
INIT_LOAD = 0x00
INIT_PURCHASE = 0x01
INIT_DATA_LENGTH = 1 + 4 + TERMINAL_LENGTH
CREDIT_DATA_LENGTH = BCD_DATE_LENGTH + BCD_TIME_LENGTH + MAC_LENGTH
DEBIT_DATA_LENGTH = 4 + BCD_DATE_LENGTH + BCD_TIME_LENGTH + MAC_LENGTH
COUNTER_MAX = 0xFFFF
RANDOM_LENGTH = 4
LOAD_ANSWER = 16
PURCHASE_ANSWER = 15
OVERDRAFT_LIMIT = 0
TAG_FCI = 0x6F
TAG_DF_NAME = 0x84
TAG_PROPRIETARY = 0xA5
TAG_PREFERRED_NAME = 0x9F12
SELECTED_BLOCKED = 0x6283


@dataclass(slots=True)
class _Pending:
    """An INITIALIZE waiting for its CREDIT / DEBIT (volatile)."""

    tx_type: int
    amount: int
    terminal: bytes
    random: bytes = field(repr=False)
    counter: int
    old_balance: int


@dataclass(slots=True)
class PurseSession:
    """The purse is the current application (``card.session.application``)."""

    spec: PurseSpec
    pending: _Pending | None = None
    log_current: bool = False


# -- helpers ---------------------------------------------------------------------------------------


def _session(card: CardOS) -> PurseSession:
    app = card.session.application
    if not isinstance(app, PurseSession):
        raise CardStatus(SW_CONDITIONS)
    return app


def _load_state(card: CardOS, spec: PurseSpec) -> PurseState:
    stored = card.image.binary_files.get(spec.state_fid)
    if stored is None:
        raise CardStatus(SW_FILE_NOT_FOUND)
    try:
        return PurseState.from_bytes(bytes(stored.content))
    except ImageError:
        raise CardStatus(SW_MEMORY_FAILURE) from None


def _store_state(card: CardOS, spec: PurseSpec, state: PurseState) -> None:
    card.image.binary_files[spec.state_fid].content[:] = state.to_bytes()
    card.touch()


def _key(card: CardOS, role: KeyRole) -> KeyState:
    spec = card.profile.key_for_role(role)
    if spec is None:
        raise CardStatus(SW_DATA_NOT_FOUND)
    return usable_key(card, spec.kid, "mac")


def _mac_checked(card: CardOS, key: KeyState, expected: bytes, given: bytes) -> None:
    """Compare a MAC; a wrong one spends a try of ``key`` (committed) and answers 9302."""
    if hmac.compare_digest(expected, given):
        if key.tries_left != key.try_limit:
            key.tries_left = key.try_limit
            card.touch()
        return
    if key.tries_left > 0:
        key.tries_left -= 1
        card.touch()
    raise CardStatus(SW_MAC_INVALID)


def _bcd(raw: bytes) -> bool:
    return all((b >> 4) <= 9 and (b & 0x0F) <= 9 for b in raw)


def _check_le(cmd: Command, length: int) -> None:
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != length:
        raise CardStatus(SW_WRONG_LE | length)


def _append_record(card: CardOS, spec: PurseSpec, record: TransactionRecord) -> None:
    log = card.image.record_files.get(spec.log_fid)
    if log is None:
        raise CardStatus(SW_FILE_NOT_FOUND)
    shifted = {number + 1: value for number, value in log.records.items() if number < spec.log_records}
    log.records.clear()
    log.records.update(shifted)
    log.records[1] = record.to_bytes()
    card.touch()


# -- SELECT ----------------------------------------------------------------------------------------


def select(card: CardOS, cmd: Command) -> bytes:
    """SELECT the purse by DF name: the FCI (``6F 84 <name> A5 9F12 <label>``);
    ``6283`` with it while the card is temporarily blocked."""
    spec = card.profile.applications.purse
    if spec is None or spec.state_fid not in card.image.binary_files:
        raise CardStatus(SW_FILE_NOT_FOUND)
    card.session.application = PurseSession(spec)
    card.session.current_ef = None
    if cmd.p2 == 0x0C:
        data = b""
    else:
        label = spec.label.encode("gbk")
        proprietary = bytes((TAG_PREFERRED_NAME >> 8, TAG_PREFERRED_NAME & 0xFF, len(label))) + label
        body = (
            bytes((TAG_DF_NAME, len(spec.df_name)))
            + spec.df_name
            + bytes((TAG_PROPRIETARY, len(proprietary)))
            + proprietary
        )
        data = bytes((TAG_FCI, len(body))) + body
    if card.image.life_cycle is LifeCycle.TEMPORARILY_BLOCKED:
        raise CardStatus(SELECTED_BLOCKED, data)
    return data


# -- commands --------------------------------------------------------------------------------------


def get_balance(card: CardOS, cmd: Command) -> bytes:
    """``80 5C 00 02 04`` -> balance."""
    app = _session(card)
    if cmd.p1 or cmd.p2 != app.spec.purse_type:
        raise CardStatus(SW_WRONG_P1P2)
    if cmd.data:
        raise CardStatus(SW_WRONG_LENGTH)
    _check_le(cmd, 4)
    return _load_state(card, app.spec).balance.to_bytes(4, "big")


def initialize(card: CardOS, cmd: Command) -> bytes:
    """INITIALIZE FOR LOAD (P1 00) / FOR PURCHASE (P1 01)."""
    app = _session(card)
    app.pending = None
    spec = app.spec
    if cmd.p1 not in (INIT_LOAD, INIT_PURCHASE) or cmd.p2 != spec.purse_type:
        raise CardStatus(SW_WRONG_P1P2)
    if len(cmd.data) != INIT_DATA_LENGTH:
        raise CardStatus(SW_WRONG_LENGTH)
    key_index = cmd.data[0]
    amount = int.from_bytes(cmd.data[1:5], "big")
    terminal = cmd.data[5:]
    _check_le(cmd, LOAD_ANSWER if cmd.p1 == INIT_LOAD else PURCHASE_ANSWER)
    if key_index != spec.key_index:
        raise CardStatus(SW_KEY_INDEX)
    if not amount or not _bcd(terminal):
        raise CardStatus(SW_WRONG_DATA)
    state = _load_state(card, spec)
    random = secrets.token_bytes(RANDOM_LENGTH)
    head = state.balance.to_bytes(4, "big")
    if cmd.p1 == INIT_LOAD:
        if state.balance + amount > spec.balance_limit:
            raise CardStatus(SW_NOT_ENOUGH_MEMORY)
        if state.online_counter >= COUNTER_MAX:
            raise CardStatus(SW_COUNTER_LIMIT)
        key = _key(card, KeyRole.LK)
        mac1 = session_mac(
            key.value,
            key.algorithm,
            load_seed(random, state.online_counter),
            load_mac1_data(state.balance, amount, TYPE_LOAD, terminal),
        )
        answer = (
            head
            + state.online_counter.to_bytes(2, "big")
            + bytes((key.version, spec.algorithm_id))
            + random
            + mac1
        )
        app.pending = _Pending(TYPE_LOAD, amount, terminal, random, state.online_counter, state.balance)
        return answer
    if amount > state.balance:
        raise CardStatus(SW_INSUFFICIENT_BALANCE)
    if state.offline_counter >= COUNTER_MAX:
        raise CardStatus(SW_COUNTER_LIMIT)
    key = _key(card, KeyRole.PK)
    answer = (
        head
        + state.offline_counter.to_bytes(2, "big")
        + OVERDRAFT_LIMIT.to_bytes(3, "big")
        + bytes((key.version, spec.algorithm_id))
        + random
    )
    app.pending = _Pending(TYPE_PURCHASE, amount, terminal, random, state.offline_counter, state.balance)
    return answer


def _take_pending(app: PurseSession, tx_type: int) -> _Pending:
    pending, app.pending = app.pending, None
    if pending is None or pending.tx_type != tx_type:
        raise CardStatus(SW_CONDITIONS)
    return pending


def credit_for_load(card: CardOS, cmd: Command) -> bytes:
    """``80 52 00 00 0B <date 4> <time 3> <MAC2>`` -> TAC."""
    app = _session(card)
    if cmd.p1 or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    _check_le(cmd, MAC_LENGTH)
    pending = _take_pending(app, TYPE_LOAD)
    if len(cmd.data) != CREDIT_DATA_LENGTH:
        raise CardStatus(SW_WRONG_LENGTH)
    date, time, mac2 = cmd.data[:4], cmd.data[4:7], cmd.data[7:]
    if not _bcd(date + time):
        raise CardStatus(SW_WRONG_DATA)
    spec = app.spec
    key = _key(card, KeyRole.LK)
    expected = session_mac(
        key.value,
        key.algorithm,
        load_seed(pending.random, pending.counter),
        load_mac2_data(pending.amount, TYPE_LOAD, pending.terminal, date, time),
    )
    _mac_checked(card, key, expected, mac2)
    state = _load_state(card, spec)
    if state.balance != pending.old_balance or state.online_counter != pending.counter:
        raise CardStatus(SW_CONDITIONS)
    new_balance = state.balance + pending.amount
    tac_key = _key(card, KeyRole.TK)
    tac = tac_mac(
        tac_key.value,
        tac_key.algorithm,
        load_tac_data(new_balance, pending.counter, pending.amount, TYPE_LOAD, pending.terminal, date, time),
    )
    state.balance = new_balance
    state.online_counter = pending.counter + 1
    state.last_load = LastTransaction(pending.counter, mac2, tac)
    _store_state(card, spec, state)
    _append_record(
        card,
        spec,
        TransactionRecord(pending.counter, pending.amount, TYPE_LOAD, pending.terminal, date, time),
    )
    return tac


def debit_for_purchase(card: CardOS, cmd: Command) -> bytes:
    """``80 54 01 00 0F <terminal seq 4> <date 4> <time 3> <MAC1>`` -> TAC, MAC2."""
    app = _session(card)
    if cmd.p1 != INIT_PURCHASE or cmd.p2:
        raise CardStatus(SW_WRONG_P1P2)
    _check_le(cmd, 2 * MAC_LENGTH)
    pending = _take_pending(app, TYPE_PURCHASE)
    if len(cmd.data) != DEBIT_DATA_LENGTH:
        raise CardStatus(SW_WRONG_LENGTH)
    sequence, date, time, mac1 = cmd.data[:4], cmd.data[4:8], cmd.data[8:11], cmd.data[11:]
    if not _bcd(date + time):
        raise CardStatus(SW_WRONG_DATA)
    spec = app.spec
    key = _key(card, KeyRole.PK)
    seed = purchase_seed(pending.random, pending.counter, sequence)
    expected = session_mac(
        key.value,
        key.algorithm,
        seed,
        purchase_mac1_data(pending.amount, TYPE_PURCHASE, pending.terminal, date, time),
    )
    _mac_checked(card, key, expected, mac1)
    state = _load_state(card, spec)
    if state.balance != pending.old_balance or state.offline_counter != pending.counter:
        raise CardStatus(SW_CONDITIONS)
    mac2 = session_mac(key.value, key.algorithm, seed, purchase_mac2_data(pending.amount))
    tac_key = _key(card, KeyRole.TK)
    tac = tac_mac(
        tac_key.value,
        tac_key.algorithm,
        purchase_tac_data(pending.amount, TYPE_PURCHASE, pending.terminal, sequence, date, time),
    )
    state.balance -= pending.amount
    state.offline_counter = pending.counter + 1
    state.last_purchase = LastTransaction(pending.counter, mac2, tac)
    _store_state(card, spec, state)
    _append_record(
        card,
        spec,
        TransactionRecord(pending.counter, pending.amount, TYPE_PURCHASE, pending.terminal, date, time),
    )
    return tac + mac2


def get_transaction_prove(card: CardOS, cmd: Command) -> bytes:
    """``80 5A 00 <type> 02 <counter>`` -> MAC (MAC2) || TAC of that transaction."""
    app = _session(card)
    if cmd.p1 or cmd.p2 not in (TYPE_LOAD, TYPE_PURCHASE):
        raise CardStatus(SW_WRONG_P1P2)
    if len(cmd.data) != 2:
        raise CardStatus(SW_WRONG_LENGTH)
    _check_le(cmd, 2 * MAC_LENGTH)
    state = _load_state(card, app.spec)
    last = state.last_load if cmd.p2 == TYPE_LOAD else state.last_purchase
    if last is None or last.counter != int.from_bytes(cmd.data, "big"):
        raise CardStatus(SW_NO_TRANSACTION)
    return last.mac + last.tac


def read_record(card: CardOS, cmd: Command) -> bytes:
    """READ RECORD of the transaction file: P2 = SFI<<3 | 4 (one record) or | 5
    (all from P1); record 1 is the newest."""
    app = card.session.application
    assert isinstance(app, PurseSession)
    spec = app.spec
    mode, sfi = cmd.p2 & 0x07, cmd.p2 >> 3
    if mode not in (4, 5) or not cmd.p1:
        raise CardStatus(SW_WRONG_P1P2)
    if sfi == 0 and not app.log_current:
        raise CardStatus(SW_NO_CURRENT_EF)
    if sfi not in (0, spec.log_sfi):
        raise CardStatus(SW_FILE_NOT_FOUND)
    app.log_current = True
    log = card.image.record_files.get(spec.log_fid)
    records = {} if log is None else log.records
    if mode == 4:
        value = records.get(cmd.p1)
        if value is None:
            raise CardStatus(SW_RECORD_NOT_FOUND)
        out = value
    else:
        out = b"".join(records[n] for n in sorted(records) if n >= cmd.p1)
        if not out:
            raise CardStatus(SW_RECORD_NOT_FOUND)
    if cmd.le is not None and cmd.le < SHORT_MAX and cmd.le != len(out):
        raise CardStatus(SW_WRONG_LE | (len(out) & 0xFF))
    return out
