"""Card flows: each a typed function over a :class:`terminal.session.CardSession`
with a typed frozen result (``to_dict()`` = the JSON of interfaces.md).

Every flow journals through the session's hook (:mod:`terminal.journal_hook`);
writes are tear-safe (begin -> command -> complete, torn when the card
vanished mid-command) and :func:`resolve_torn` settles what a tear left open.
"""

from __future__ import annotations

from terminal.flows.authenticity import authenticate_card
from terminal.flows.generic import (
    FileAddress,
    check_card_info,
    parse_card_info,
    parse_file_address,
    parse_write_data,
    read_generic,
    write_generic,
)
from terminal.flows.lifecycle import BlockMode, activate, block, card_status, unblock
from terminal.flows.pin import (
    change_pin,
    ensure_transaction_allowed,
    initial_pin_of,
    normalize_pin,
    pin_status,
    reset_pin,
    unblock_pin,
    verify_pin,
)
from terminal.flows.read import card_bas_string, read_basic, read_card_bas, read_holder
from terminal.flows.results import (
    AuthenticityResult,
    BasicInfo,
    CardStatusResult,
    GenericReadResult,
    GenericWriteResult,
    HolderInfo,
    KeyCounter,
    LifeCycleResult,
    PinOperationResult,
    PinState,
    PinStatus,
    TornEntryOutcome,
    TornResolution,
)
from terminal.flows.tear import resolve_torn

__all__ = [
    "AuthenticityResult",
    "BasicInfo",
    "BlockMode",
    "CardStatusResult",
    "FileAddress",
    "GenericReadResult",
    "GenericWriteResult",
    "HolderInfo",
    "KeyCounter",
    "LifeCycleResult",
    "PinOperationResult",
    "PinState",
    "PinStatus",
    "TornEntryOutcome",
    "TornResolution",
    "activate",
    "authenticate_card",
    "block",
    "card_bas_string",
    "card_status",
    "change_pin",
    "check_card_info",
    "ensure_transaction_allowed",
    "initial_pin_of",
    "normalize_pin",
    "parse_card_info",
    "parse_file_address",
    "parse_write_data",
    "pin_status",
    "read_basic",
    "read_card_bas",
    "read_generic",
    "read_holder",
    "reset_pin",
    "resolve_torn",
    "unblock",
    "unblock_pin",
    "verify_pin",
    "write_generic",
]
