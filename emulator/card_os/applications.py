"""Applications beside the social security application on the virtual card
(issue 9, docs/card-os.md §12): the transport wallet (``purse``), the
financial application (``financial``) and the park ticket record rule.

:data:`HANDLERS` is merged into the card OS dispatch table.  It adds the
purse and GET PROCESSING OPTIONS handlers and wraps three handlers of the
social security application:

* SELECT by a DF name of the purse, the PSE / PPSE or the financial AID
  makes that application current (``session.application``); any other
  successful SELECT returns to the social security application;
* READ RECORD goes to the current application;
* UPDATE RECORD of the park ticket record answers ``6985`` unless the card
  is active (02), as every wallet and ticket command does in 00 / 01.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from card_model.lifecycle import LifeCycle
from emulator.card_os import files, financial, purse
from emulator.card_os.command import Command
from emulator.card_os.sw import SW_CONDITIONS, CardStatus

if TYPE_CHECKING:
    from emulator.card_os.card import CardOS

__all__ = ["HANDLERS", "read_record", "select", "update_record"]

SELECT_BY_NAME = 0x04
SELECT_P2 = (0x00, 0x0C)


def select(card: CardOS, cmd: Command) -> bytes:
    if cmd.p1 == SELECT_BY_NAME and cmd.p2 in SELECT_P2 and cmd.data:
        applications = card.profile.applications
        if applications.purse is not None and cmd.data == applications.purse.df_name:
            return purse.select(card, cmd)
        if applications.financial is not None and financial.is_financial_name(
            applications.financial, cmd.data
        ):
            return financial.select(card, cmd)
    try:
        answer = files.select(card, cmd)
    except CardStatus as status:
        if status.data:  # 6283 with the FCI: the application was selected
            card.session.application = None
        raise
    card.session.application = None
    return answer


def read_record(card: CardOS, cmd: Command) -> bytes:
    app = card.session.application
    if app is not None and card.gate.read_record_files is not None:
        raise CardStatus(card.gate.refuse)  # 03 / 04: READ RECORD of EF05 only
    if isinstance(app, purse.PurseSession):
        return purse.read_record(card, cmd)
    if isinstance(app, financial.FinancialSession):
        return financial.read_record(card, cmd)
    return files.read_record(card, cmd)


def _targets_ticket(card: CardOS, cmd: Command) -> bool:
    ticket = card.profile.applications.park_ticket
    if ticket is None:
        return False
    sfi = cmd.p2 >> 3
    return sfi == ticket.sfi or (sfi == 0 and card.session.current_ef == ticket.fid)


def update_record(card: CardOS, cmd: Command) -> bytes:
    if card.image.life_cycle is not LifeCycle.ACTIVE and _targets_ticket(card, cmd):
        raise CardStatus(SW_CONDITIONS)
    return files.update_record(card, cmd)


HANDLERS: dict[str, Callable[[CardOS, Command], bytes]] = {
    "select": select,
    "read_record": read_record,
    "update_record": update_record,
    "get_balance": purse.get_balance,
    "init_transaction": purse.initialize,
    "credit_for_load": purse.credit_for_load,
    "debit_for_purchase": purse.debit_for_purchase,
    "get_transaction_prove": purse.get_transaction_prove,
    "get_processing_options": financial.get_processing_options,
}
