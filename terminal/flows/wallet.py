"""The transport wallet flows: balance, load (充值), purchase (消费), records.

PBOC electronic purse protocol (docs/wallet.md, docs/card-os.md §12); the
load key, purchase key and TAC key stay in the key source
(:mod:`terminal.keysource.purse`):

load      SELECT wallet, GET BALANCE, INITIALIZE FOR LOAD (card: counter,
          random, MAC1), key source: check MAC1 and give MAC2, journal
          ``begin``, CREDIT FOR LOAD (card: TAC), key source: check the TAC.
purchase  SELECT wallet, GET BALANCE, INITIALIZE FOR PURCHASE (card:
          counter, random), key source: MAC1, journal ``begin``, DEBIT FOR
          PURCHASE (card: TAC, MAC2), key source: check MAC2 and the TAC.

Every money movement is journaled (``wallet.load`` / ``wallet.purchase``):
the intent with the card state it starts from (balance, the counter the
transaction uses, amount, terminal, date and time, and for a purchase the
terminal sequence number) before CREDIT / DEBIT is sent, the outcome
(balance, TAC) after.  A card pulled while CREDIT / DEBIT is in flight marks
the entry torn (:class:`~terminal.errors.TornOperation`);
:func:`terminal.flows.resolve_torn` settles it at the next presentation
from the card's transaction records, counters and GET TRANSACTION PROVE
(:mod:`terminal.flows.wallet_tear`).  Refusals (amount, limit, balance) are
journaled as refused before any purse command that could change the card.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import secrets
from collections.abc import Iterator, Mapping
from typing import NoReturn

from apdu.command import CommandApdu
from apdu.errors import KeySourceError, ProtocolError, SscardError, TransportError
from card_model.purse import (
    TYPE_LOAD,
    TYPE_PURCHASE,
    load_mac1_data,
    load_mac2_data,
    load_seed,
    load_tac_data,
    purchase_mac1_data,
    purchase_mac2_data,
    purchase_seed,
    purchase_tac_data,
)
from terminal.flows._common import journal_scope
from terminal.flows.amounts import check_amount, format_fen
from terminal.flows.purse_commands import (
    decode_records,
    get_balance,
    initialize,
    purse_spec,
    read_log,
    selected_purse,
    terminal_bytes,
    transaction_moment,
    wallet_record,
)
from terminal.flows.wallet_errors import (
    BalanceLimitExceeded,
    InsufficientBalance,
    WalletCardNotGenuine,
    WalletProofInvalid,
    WalletProofUnchecked,
)
from terminal.flows.wallet_results import WalletBalance, WalletRecords, WalletTransaction
from terminal.journal_hook import DetailValue, JournalScope
from terminal.keysource.base import KeySource
from terminal.keysource.purse import PurseKeys, purse_keys
from terminal.session import CardSession

__all__ = ["load", "purchase", "wallet_balance", "wallet_records"]

SEQUENCE_LENGTH = 4


def _keys(session: CardSession, key_source: KeySource | None) -> PurseKeys:
    source = key_source if key_source is not None else session.key_source
    if source is None:
        raise KeySourceError(
            "no key source (PSAM, security module or key file) is configured", kind="no_psam"
        )
    return purse_keys(source)


def _journal_error(
    session: CardSession, operation: str, details: Mapping[str, DetailValue], error: SscardError
) -> NoReturn:
    """Record ``error`` (a refusal or a failure before the card was changed) and raise it."""
    with journal_scope(session, operation, details):
        raise error


@contextlib.contextmanager
def _proof_check(scope: JournalScope, operation: str, counter: int, after: int) -> Iterator[None]:
    """The key source's check of a proof after the card applied the transaction:
    a key source that fails (a module that does not answer, a PSAM pulled)
    becomes :class:`WalletProofUnchecked`, and the entry keeps ``applied``
    with the new balance.  A transport error that is not the key source's
    (the card's own reader) still marks the entry torn."""
    try:
        yield
    except TransportError:
        raise
    except SscardError as exc:
        scope.add(tac_verified=False, proof_error=exc.error_id)
        raise WalletProofUnchecked(
            f"{WalletProofUnchecked.message_en}: {operation} with counter {counter},"
            f" balance now {format_fen(after)}; {exc.error_id}",
            message_zh=f"{WalletProofUnchecked.message_zh}（卡内余额 {format_fen(after)} 元）",
        ) from exc


def wallet_balance(session: CardSession) -> WalletBalance:
    """GET BALANCE of the transport wallet."""
    spec = purse_spec(session)
    with session.transaction(), journal_scope(session, "wallet.balance") as scope:
        with selected_purse(session, spec):
            balance = get_balance(session, spec)
        scope.add(balance=balance.balance)
        return balance


def wallet_records(session: CardSession) -> WalletRecords:
    """The balance and the card's transaction records, newest first."""
    spec = purse_spec(session)
    with session.transaction(), journal_scope(session, "wallet.records") as scope:
        with selected_purse(session, spec):
            balance = get_balance(session, spec)
            records = decode_records(read_log(session, spec))
        scope.add(balance=balance.balance, records=len(records))
        return WalletRecords(balance, tuple(wallet_record(i + 1, r) for i, r in enumerate(records)))


def load(
    session: CardSession,
    amount: int,
    *,
    key_source: KeySource | None = None,
    now: _dt.datetime | None = None,
) -> WalletTransaction:
    """Load ``amount`` fen into the wallet (see the module docstring)."""
    fen = check_amount(amount)
    spec = purse_spec(session)
    keys = _keys(session, key_source)
    algorithm, factor = session.algorithm, session.info.factor
    terminal = terminal_bytes(session)
    local, date, time = transaction_moment(now)
    base: dict[str, DetailValue] = {
        "type": f"{TYPE_LOAD:02X}",
        "amount": fen,
        "terminal": terminal.hex(),
        "date": date.hex(),
        "time": time.hex(),
    }
    with session.transaction(), selected_purse(session, spec):
        before = get_balance(session, spec).balance
        base["balance_before"] = before
        if before + fen > spec.balance_limit:
            _journal_error(
                session,
                "wallet.load",
                base,
                BalanceLimitExceeded(
                    f"balance {format_fen(before)} + {format_fen(fen)}"
                    f" > limit {format_fen(spec.balance_limit)}",
                    message_zh=f"余额 {format_fen(before)} 元，上限 {format_fen(spec.balance_limit)} 元",
                ),
            )
        init = initialize(session, spec, TYPE_LOAD, fen, terminal)
        if init.balance != before:
            raise ProtocolError("INITIALIZE FOR LOAD answered another balance than GET BALANCE")
        seed = load_seed(init.random, init.counter)
        details = {**base, "counter": init.counter}
        mac2 = keys.load_mac2(
            algorithm,
            factor,
            seed,
            load_mac1_data(before, fen, TYPE_LOAD, terminal),
            init.mac1,
            load_mac2_data(fen, TYPE_LOAD, terminal, date, time),
        )
        if mac2 is None:
            _journal_error(session, "wallet.load", details, WalletCardNotGenuine())
        with journal_scope(session, "wallet.load", details) as scope:
            with scope.write("CREDIT FOR LOAD"):
                tac = session.send(
                    CommandApdu(0x80, 0x52, 0x00, 0x00, date + time + mac2, le=4), context="key"
                ).data
            after = before + fen
            # the card is credited from here on: the entry says so whatever the proof check does
            scope.add(applied=True, balance=after, tac=tac.hex().upper())
            with _proof_check(scope, "load", init.counter, after):
                verified = len(tac) == 4 and keys.check_tac(
                    algorithm,
                    factor,
                    load_tac_data(after, init.counter, fen, TYPE_LOAD, terminal, date, time),
                    tac,
                )
            scope.add(tac_verified=verified)
            if not verified:
                raise WalletProofInvalid(f"load TAC of counter {init.counter}")
            return WalletTransaction(
                "load", fen, before, after, init.counter, terminal.hex(), local, tac, verified, scope.entry_id
            )


def purchase(
    session: CardSession,
    amount: int,
    *,
    key_source: KeySource | None = None,
    now: _dt.datetime | None = None,
) -> WalletTransaction:
    """Pay ``amount`` fen from the wallet (see the module docstring)."""
    fen = check_amount(amount)
    spec = purse_spec(session)
    keys = _keys(session, key_source)
    algorithm, factor = session.algorithm, session.info.factor
    terminal = terminal_bytes(session)
    local, date, time = transaction_moment(now)
    sequence = secrets.token_bytes(SEQUENCE_LENGTH)
    base: dict[str, DetailValue] = {
        "type": f"{TYPE_PURCHASE:02X}",
        "amount": fen,
        "terminal": terminal.hex(),
        "date": date.hex(),
        "time": time.hex(),
        "sequence": sequence.hex().upper(),
    }
    with session.transaction(), selected_purse(session, spec):
        before = get_balance(session, spec).balance
        base["balance_before"] = before
        if fen > before:
            _journal_error(
                session,
                "wallet.purchase",
                base,
                InsufficientBalance(
                    f"balance {format_fen(before)} < {format_fen(fen)}",
                    message_zh=f"余额 {format_fen(before)} 元",
                ),
            )
        init = initialize(session, spec, TYPE_PURCHASE, fen, terminal)
        if init.balance != before:
            raise ProtocolError("INITIALIZE FOR PURCHASE answered another balance than GET BALANCE")
        seed = purchase_seed(init.random, init.counter, sequence)
        mac1 = keys.purchase_mac1(
            algorithm, factor, seed, purchase_mac1_data(fen, TYPE_PURCHASE, terminal, date, time)
        )
        with journal_scope(session, "wallet.purchase", {**base, "counter": init.counter}) as scope:
            with scope.write("DEBIT FOR PURCHASE"):
                answer = session.send(
                    CommandApdu(0x80, 0x54, 0x01, 0x00, sequence + date + time + mac1, le=8), context="key"
                ).data
            after = before - fen
            tac, mac2 = answer[:4], answer[4:8]
            # the card is debited from here on: the entry says so whatever the proof checks do
            scope.add(applied=True, balance=after, tac=tac.hex().upper())
            with _proof_check(scope, "purchase", init.counter, after):
                proven = len(answer) == 8 and keys.check_purchase_mac2(
                    algorithm, factor, seed, purchase_mac2_data(fen), mac2
                )
                verified = len(answer) == 8 and keys.check_tac(
                    algorithm,
                    factor,
                    purchase_tac_data(fen, TYPE_PURCHASE, terminal, sequence, date, time),
                    tac,
                )
            scope.add(mac2_verified=proven, tac_verified=verified)
            if not (proven and verified):
                raise WalletProofInvalid(f"purchase MAC2/TAC of counter {init.counter}")
            return WalletTransaction(
                "purchase",
                fen,
                before,
                after,
                init.counter,
                terminal.hex(),
                local,
                tac,
                verified,
                scope.entry_id,
            )
