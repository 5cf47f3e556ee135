"""The reader's PIN pad (PC/SC part 10 ``FEATURE_VERIFY_PIN_DIRECT`` /
``FEATURE_MODIFY_PIN_DIRECT``): a thin adapter over the terminal session.

The PIN never reaches the computer: the service sends the reader a
``PIN_VERIFY_STRUCTURE`` / ``PIN_MODIFY_STRUCTURE`` holding the VERIFY /
CHANGE PIN command of docs/card-os.md §4 with an empty PIN block; the reader
asks the holder, puts the packed BCD PIN into the block and sends the
command.  Its answer is the card's status word (mapped as the flows map it:
63Cx -51 with retries, 6983 -52) or a reader code: ``6400`` timeout (-32),
``6401`` cancelled (-31), ``6402`` the new PIN entries differ (-34),
``6403`` wrong length (-33).

The terminal's own rules that need the PIN itself cannot be applied here:
-35 ("initial PIN may not be used") is checked from the card's initial flag
before the reader asks; -36 ("may not change back to the initial PIN") is
not checked for PIN pad changes (docs/service.md).
"""

from __future__ import annotations

import struct

from apdu.errors import PinBlocked, PinEntryError
from apdu.status import error_for
from terminal import flows
from terminal.flows.results import PinOperationResult
from terminal.journal_hook import JournalScope
from terminal.service.pcsc_control import (
    FEATURE_MODIFY_PIN_DIRECT,
    FEATURE_VERIFY_PIN_DIRECT,
    ControlChannel,
)
from terminal.session import CardSession

__all__ = [
    "READER_CODES",
    "modify_structure",
    "pinpad_change",
    "pinpad_verify",
    "supports",
    "verify_structure",
]

# bmFormatString: bit 7 = units in bytes, bits 6-3 = PIN position (0),
# bit 2 = left justified, bits 1-0 = 01 BCD.
FORMAT_BCD_BYTES = 0x81
ENTRY_VALIDATE_KEY = 0x02
LANG_ZH_CN = 0x0804
READER_CODES: dict[int, str] = {0x6400: "timeout", 0x6401: "cancelled", 0x6402: "mismatch", 0x6403: "length"}
CHANGE_SEPARATOR = 0xFF


def supports(channel: ControlChannel | None, operation: str) -> bool:
    """True when the reader offers the part 10 feature for ``verify`` / ``change``."""
    if channel is None:
        return False
    feature = FEATURE_VERIFY_PIN_DIRECT if operation == "verify" else FEATURE_MODIFY_PIN_DIRECT
    return feature in channel.features()


def _block_len(max_digits: int) -> int:
    return (max_digits + 1) // 2


def verify_structure(pin_id: int, min_digits: int, max_digits: int, timeout: int) -> bytes:
    """``PIN_VERIFY_STRUCTURE`` for ``00 20 00 <pin_id> <BCD block>`` (little endian fields)."""
    block = _block_len(max_digits)
    apdu = bytes([0x00, 0x20, 0x00, pin_id, block]) + b"\xff" * block
    return (
        struct.pack(
            "<BBBBBHBBHB3sI",
            min(timeout, 255),  # bTimerOut
            min(timeout, 255),  # bTimerOut2
            FORMAT_BCD_BYTES,  # bmFormatString
            block,  # bmPINBlockString: no length field, block bytes
            0x00,  # bmPINLengthFormat
            (min_digits << 8) | max_digits,  # wPINMaxExtraDigit
            ENTRY_VALIDATE_KEY,  # bEntryValidationCondition
            0x01,  # bNumberMessage
            LANG_ZH_CN,  # wLangId
            0x00,  # bMsgIndex
            b"\x00\x00\x00",  # bTeoPrologue
            len(apdu),  # ulDataLength
        )
        + apdu
    )


def modify_structure(pin_id: int, min_digits: int, max_digits: int, timeout: int) -> bytes:
    """``PIN_MODIFY_STRUCTURE`` for ``80 5E 01 <pin_id> <old> FF <new>``: the
    reader asks the old PIN, the new one and its confirmation."""
    block = _block_len(max_digits)
    data = b"\xff" * block + bytes([CHANGE_SEPARATOR]) + b"\xff" * block
    apdu = bytes([0x80, 0x5E, 0x01, pin_id, len(data)]) + data
    return (
        struct.pack(
            "<BBBBBBBHBBBHBBB3sI",
            min(timeout, 255),  # bTimerOut
            min(timeout, 255),  # bTimerOut2
            FORMAT_BCD_BYTES,  # bmFormatString
            block,  # bmPINBlockString
            0x00,  # bmPINLengthFormat
            0x00,  # bInsertionOffsetOld
            block + 1,  # bInsertionOffsetNew (after the old block and the separator)
            (min_digits << 8) | max_digits,  # wPINMaxExtraDigit
            0x03,  # bConfirmPIN: confirm the new PIN, ask the current one
            ENTRY_VALIDATE_KEY,  # bEntryValidationCondition
            0x03,  # bNumberMessage
            LANG_ZH_CN,  # wLangId
            0x00,  # bMsgIndex1
            0x01,  # bMsgIndex2
            0x02,  # bMsgIndex3
            b"\x00\x00\x00",  # bTeoPrologue
            len(apdu),  # ulDataLength
        )
        + apdu
    )


def _check_answer(answer: bytes) -> None:
    if len(answer) < 2:
        raise PinEntryError("the PIN pad gave no answer", kind="timeout")
    sw = int.from_bytes(answer[-2:], "big")
    kind = READER_CODES.get(sw)
    if kind is not None:
        raise PinEntryError(f"PIN pad: {kind}", kind=kind)  # type: ignore[arg-type]
    error = error_for(sw, context="pin")
    if error is not None:
        raise error


def pinpad_verify(
    session: CardSession, channel: ControlChannel, *, timeout: int, for_transaction: bool = False
) -> PinOperationResult:
    """VERIFY with the PIN typed on the reader (see the module docstring)."""
    rules = session.profile.pin
    with session.transaction():
        before = flows.pin_status(session)
        if before.state == "blocked":
            raise PinBlocked()
        if for_transaction and before.state == "initial":
            raise PinEntryError("the initial PIN is still set", kind="initial_pin_use")
        with JournalScope(session.journal, "pin.verify", session.card_id, {"entry": "pinpad"}) as scope:
            session.select_application()
            structure = verify_structure(rules.pin_id, rules.min_digits, rules.max_digits, timeout)
            _check_answer(channel.control(channel.features()[FEATURE_VERIFY_PIN_DIRECT], structure))
            after = flows.pin_status(session)
            scope.add(retries_left=after.retries_left)
            return PinOperationResult("verify", after)


def pinpad_change(session: CardSession, channel: ControlChannel, *, timeout: int) -> PinOperationResult:
    """CHANGE PIN with the old and new PINs typed on the reader."""
    rules = session.profile.pin
    with session.transaction():
        before = flows.pin_status(session)
        if before.state == "blocked":
            raise PinBlocked()
        details: dict[str, str | int | bool] = {
            "entry": "pinpad",
            "initial_before": before.initial,
            "tries_before": before.retries_left,
        }
        with JournalScope(session.journal, "pin.change", session.card_id, details) as scope:
            session.select_application()
            structure = modify_structure(rules.pin_id, rules.min_digits, rules.max_digits, timeout)
            with scope.write("CHANGE PIN"):
                answer = channel.control(channel.features()[FEATURE_MODIFY_PIN_DIRECT], structure)
            _check_answer(answer)
            after = flows.pin_status(session)
            scope.add(retries_left=after.retries_left)
            return PinOperationResult("change", after)
