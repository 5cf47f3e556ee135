"""The national wallet functions over the transport wallet flows
(:mod:`terminal.flows.wallet`): ``iDoDebit`` (and its ``_HSM_Step`` sequence)
and ``iReadDebitRecord``.

The domain facts sheet names the functions but not their texts; the project
decides them (docs/service.md, "National drop-in"), amounts in fen as the
purse counts them:

``pPayInfo``
    ``amount|`` or ``amount|YYYYMMDDhhmmss|``: the amount in fen (digits),
    optionally the transaction time the counter system assigned (default:
    now).  Anything else is refused: -41 (not digits, not a time), -42 (too
    long), -14 (no amount).
``iDoDebit`` output
    ``amount|balance before|balance after|counter|terminal no|time|TAC|``
    (fen, the card's offline transaction counter, the 12-digit terminal
    number, ``YYYYMMDDhhmmss``, the card's TAC in hex).
``iReadDebitRecord`` output
    ``balance|n|`` then for each record, newest first,
    ``type code|amount|counter|terminal no|time|`` (``time`` empty when the
    card's date is not a valid moment).

The step sequence asks the security module for MAC1, then to check the
card's MAC2 and the TAC (:mod:`terminal.keysource.purse`); the step texts
are those of :class:`~terminal.keysource.purse.HsmPurseKeys`.
"""

from __future__ import annotations

import datetime as _dt
import re

from apdu.errors import InvalidInput
from terminal.flows.wallet_results import WalletRecords, WalletTransaction

__all__ = ["PayInfo", "debit_text", "parse_pay_info", "records_text"]

_DIGITS = re.compile(r"[0-9]+")
_MAX_AMOUNT_DIGITS = 9
_TIME_FORMAT = "%Y%m%d%H%M%S"


class PayInfo:
    """A parsed ``pPayInfo``: ``amount`` in fen and the optional ``moment``."""

    __slots__ = ("amount", "moment")

    def __init__(self, amount: int, moment: _dt.datetime | None) -> None:
        self.amount = amount
        self.moment = moment


def parse_pay_info(text: str) -> PayInfo:
    """``amount|`` or ``amount|YYYYMMDDhhmmss|`` (see the module docstring)."""
    body = text.strip()
    if body.endswith("|"):
        body = body[:-1]
    parts = body.split("|") if body else []
    if not parts or not parts[0]:
        raise InvalidInput("pPayInfo: the amount in fen is missing", kind="parameter")
    if len(parts) > 2:
        raise InvalidInput("pPayInfo: amount|time| expected", kind="parameter")
    amount_text = parts[0].strip()
    if not _DIGITS.fullmatch(amount_text):
        raise InvalidInput("pPayInfo: the amount is a whole number of fen", kind="chars")
    if len(amount_text) > _MAX_AMOUNT_DIGITS:
        raise InvalidInput("pPayInfo: the amount is too long", kind="length")
    moment: _dt.datetime | None = None
    if len(parts) == 2 and parts[1].strip():
        time_text = parts[1].strip()
        if not (len(time_text) == 14 and _DIGITS.fullmatch(time_text)):
            raise InvalidInput("pPayInfo: the time is YYYYMMDDhhmmss", kind="chars")
        try:
            moment = _dt.datetime.strptime(time_text, _TIME_FORMAT)
        except ValueError:
            raise InvalidInput("pPayInfo: the time is not a valid moment", kind="chars") from None
    return PayInfo(int(amount_text), moment)


def _moment(value: _dt.datetime | None) -> str:
    return value.strftime(_TIME_FORMAT) if value is not None else ""


def debit_text(result: WalletTransaction) -> str:
    """The ``iDoDebit`` output of a completed purchase."""
    fields = (
        str(result.amount),
        str(result.balance_before),
        str(result.balance),
        str(result.counter),
        result.terminal.upper(),
        _moment(result.time),
        result.tac.hex().upper(),
    )
    return "".join(f"{f}|" for f in fields)


def records_text(result: WalletRecords) -> str:
    """The ``iReadDebitRecord`` output: balance, count, then the records."""
    out = [str(result.balance.balance), str(len(result.records))]
    for record in result.records:
        out += [
            record.type_code,
            str(record.amount),
            str(record.counter),
            record.terminal.upper(),
            _moment(record.time),
        ]
    return "".join(f"{f}|" for f in out)
