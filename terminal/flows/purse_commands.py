"""The purse commands of the terminal side (docs/card-os.md §12): SELECT of
the wallet application, GET BALANCE, INITIALIZE, the transaction file,
GET TRANSACTION PROVE, and the way back to the social security application.

Card answers become the wallet's exceptions: no wallet (6A82) ->
:class:`WalletNotAvailable`, 6985 on a card not activated ->
:class:`WalletInactive`, 9401 -> :class:`InsufficientBalance`, 6A84 ->
:class:`BalanceLimitExceeded`, 9402 -> :class:`WalletCounterExhausted`;
anything else keeps the status word's own exception (apdu.status).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from apdu.command import CommandApdu
from apdu.errors import CardError, ConditionsNotSatisfied, FileNotFound, RecordNotFound, TransportError
from apdu.response import ResponseApdu
from card_model.purse import (
    RECORD_LENGTH,
    TERMINAL_LENGTH,
    TYPE_LOAD,
    PurseSpec,
    TransactionRecord,
)
from terminal._data import load_data
from terminal.flows.wallet_errors import (
    BalanceLimitExceeded,
    InsufficientBalance,
    WalletCounterExhausted,
    WalletInactive,
    WalletNotAvailable,
)
from terminal.flows.wallet_results import WalletBalance, WalletRecord
from terminal.session import CardSession

__all__ = [
    "InitAnswer",
    "decode_records",
    "get_balance",
    "initialize",
    "purse_spec",
    "read_log",
    "selected_purse",
    "terminal_bytes",
    "transaction_moment",
    "transaction_prove",
    "wallet_record",
]

SW_INSUFFICIENT = 0x9401
SW_COUNTER_LIMIT = 0x9402
SW_NO_TRANSACTION = 0x9406
SW_LIMIT = 0x6A84
SW_CONDITIONS = 0x6985
LE_ALL = 256
INIT_LOAD = 0x00
INIT_PURCHASE = 0x01


@cache
def _settings() -> dict[str, Any]:
    return load_data("wallet")


def purse_spec(session: CardSession) -> PurseSpec:
    spec = session.profile.applications.purse
    if spec is None:
        raise WalletNotAvailable(f"the {session.profile.name} profile has no wallet")
    return spec


def terminal_bytes(session: CardSession) -> bytes:
    """The 6-byte BCD terminal number of the purse commands: the session's
    (the PSAM's EF16), else the configured default."""
    number = session.terminal_number
    if len(number) != 2 * TERMINAL_LENGTH or not (number.isascii() and number.isdigit()):
        number = str(_settings()["wallet"]["default_terminal"])
    return bytes.fromhex(number)


def transaction_moment(now: _dt.datetime | None = None) -> tuple[_dt.datetime, bytes, bytes]:
    """Beijing time (naive), the 4-byte BCD date and the 3-byte BCD time."""
    zone = _dt.timezone(_dt.timedelta(hours=int(_settings()["wallet"]["utc_offset_hours"])))
    moment = now.astimezone(zone) if now is not None and now.tzinfo is not None else now
    if moment is None:
        moment = _dt.datetime.now(zone)
    local = moment.replace(tzinfo=None, microsecond=0)
    return local, bytes.fromhex(local.strftime("%Y%m%d")), bytes.fromhex(local.strftime("%H%M%S"))


def _send(session: CardSession, cmd: CommandApdu) -> ResponseApdu:
    try:
        return session.send(cmd)
    except CardError as exc:
        sw = exc.sw
        if sw == SW_INSUFFICIENT:
            raise InsufficientBalance() from exc
        if sw == SW_LIMIT:
            raise BalanceLimitExceeded() from exc
        if sw == SW_COUNTER_LIMIT:
            raise WalletCounterExhausted(sw=sw) from exc
        raise


@contextlib.contextmanager
def selected_purse(session: CardSession, spec: PurseSpec) -> Iterator[None]:
    """The wallet application selected for the block; the social security
    application is selected again afterwards (best effort: after a failure
    the card may be gone)."""
    try:
        session.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, spec.df_name, le=LE_ALL))
    except FileNotFound as exc:
        raise WalletNotAvailable("the card answered 6A82 to the wallet's SELECT", sw=exc.sw) from exc
    try:
        yield
    except TransportError:
        raise  # the card is gone: nothing to select again
    except BaseException:
        _back(session)
        raise
    _back(session)


def _back(session: CardSession) -> None:
    with contextlib.suppress(TransportError, CardError):
        session.select_application(check=False)


def get_balance(session: CardSession, spec: PurseSpec) -> WalletBalance:
    try:
        raw = _send(session, CommandApdu(0x80, 0x5C, 0x00, spec.purse_type, le=4)).data
    except ConditionsNotSatisfied as exc:
        raise WalletInactive(sw=exc.sw or SW_CONDITIONS) from exc
    if len(raw) != 4:
        raise WalletNotAvailable("GET BALANCE: 4 bytes expected")
    return WalletBalance(int.from_bytes(raw, "big"), spec.balance_limit, spec.label)


@dataclass(frozen=True, slots=True)
class InitAnswer:
    """What INITIALIZE FOR LOAD / PURCHASE answered."""

    balance: int
    counter: int
    key_version: int
    algorithm_id: int
    random: bytes = field(repr=False)
    mac1: bytes = field(default=b"", repr=False)


def initialize(
    session: CardSession, spec: PurseSpec, tx_type: int, amount: int, terminal: bytes
) -> InitAnswer:
    """INITIALIZE FOR LOAD (``tx_type`` 02) or FOR PURCHASE (06)."""
    load = tx_type == TYPE_LOAD
    data = bytes((spec.key_index,)) + amount.to_bytes(4, "big") + terminal
    answer = _send(
        session,
        CommandApdu(
            0x80, 0x50, INIT_LOAD if load else INIT_PURCHASE, spec.purse_type, data, le=16 if load else 15
        ),
    ).data
    if load and len(answer) == 16:
        return InitAnswer(
            int.from_bytes(answer[0:4], "big"),
            int.from_bytes(answer[4:6], "big"),
            answer[6],
            answer[7],
            answer[8:12],
            answer[12:16],
        )
    if not load and len(answer) == 15:
        return InitAnswer(
            int.from_bytes(answer[0:4], "big"),
            int.from_bytes(answer[4:6], "big"),
            answer[9],
            answer[10],
            answer[11:15],
        )
    raise WalletNotAvailable(f"INITIALIZE: {len(answer)} bytes answered")


def read_log(session: CardSession, spec: PurseSpec) -> list[bytes]:
    """Every raw record of the transaction file, newest first."""
    try:
        raw = session.send(CommandApdu(0x00, 0xB2, 0x01, (spec.log_sfi << 3) | 0x05, le=LE_ALL)).data
    except RecordNotFound:
        return []
    return [raw[i : i + RECORD_LENGTH] for i in range(0, len(raw) - RECORD_LENGTH + 1, RECORD_LENGTH)]


def _moment(record: TransactionRecord) -> _dt.datetime | None:
    text = record.date.hex() + record.time.hex()
    try:
        return _dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        return None


def wallet_record(number: int, record: TransactionRecord) -> WalletRecord:
    code = f"{record.tx_type:02X}"
    row = _settings()["transaction_types"].get(code)
    name = str(row["name"]) if row else "other"
    text = f"{row['zh']} {row['en']}" if row else code
    return WalletRecord(
        number, name, code, text, record.counter, record.amount, record.terminal.hex(), _moment(record)
    )


def decode_records(raw: list[bytes]) -> list[TransactionRecord]:
    out = []
    for value in raw:
        try:
            out.append(TransactionRecord.from_bytes(value))
        except ValueError:
            continue
    return out


def transaction_prove(session: CardSession, tx_type: int, counter: int) -> tuple[bytes, bytes] | None:
    """GET TRANSACTION PROVE: (MAC, TAC) of the last transaction of ``tx_type``
    when it used ``counter``; None when it did not (9406)."""
    answer = session.send(
        CommandApdu(0x80, 0x5A, 0x00, tx_type, counter.to_bytes(2, "big"), le=8), accept={SW_NO_TRANSACTION}
    )
    if answer.sw == SW_NO_TRANSACTION or len(answer.data) != 8:
        return None
    return answer.data[:4], answer.data[4:]
