"""Service password (服务密码) flows (docs/card-os.md §4).

- :func:`pin_status`: tries left, limit, initial / blocked, without spending a try.
- :func:`verify_pin`: VERIFY; wrong -> :class:`~apdu.errors.PinError` (-51,
  ``retries_left``), blocked -> :class:`~apdu.errors.PinBlocked` (-52).
- :func:`change_pin`: old + new; refuses the initial PIN as the new one (-36).
- :func:`ensure_transaction_allowed`: refuses transactions while the initial
  PIN is still set (-35).
- :func:`reset_pin`: RELOAD PIN with the PIN reload key (PRK) to the initial
  PIN (last 6 characters of the SSN, ``X`` -> ``0``) or to a chosen PIN.
- :func:`unblock_pin`: PIN UNBLOCK with the PIN unblock key (PUK).

PINs are text of digits; an initial PIN typed with its ``X`` (``x``) is
accepted where an existing PIN is entered (:func:`normalize_pin`).  PIN
blocks are sent as sensitive APDUs (redacted in traces); PINs never enter
the journal, exceptions or logs.
"""

from __future__ import annotations

import hmac

from apdu.command import CommandApdu
from apdu.elements import ELEMENTS, encode_pin
from apdu.errors import InvalidInput, PinBlocked, PinEntryError
from card_model.errors import CardModelError
from card_model.keys import KeyRole
from card_model.values import Ssn
from terminal.flows._common import authenticate_for, file_spec, journal_scope, pin_status_now, status_after
from terminal.flows.results import PinOperationResult, PinStatus
from terminal.journal_hook import DetailValue
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = [
    "change_pin",
    "ensure_transaction_allowed",
    "initial_pin_of",
    "normalize_pin",
    "pin_status",
    "reset_pin",
    "unblock_pin",
    "verify_pin",
]

SSN_TAG = 0x08
CHANGE_SEPARATOR = b"\xff"
RELOAD_INITIAL = 0x80


def normalize_pin(session: CardSession, pin: str, *, allow_x: bool = True) -> str:
    """Check a typed PIN against the profile: digits (``X``/``x`` -> ``0`` when
    ``allow_x``: an initial PIN typed as printed), min..max digits.
    :class:`InvalidInput` ``chars`` (-41) or :class:`PinEntryError` ``length`` (-33)."""
    if not isinstance(pin, str):
        raise InvalidInput("PIN: text expected", kind="parameter")
    text = pin.strip()
    if allow_x:
        text = text.replace("X", "0").replace("x", "0")
    rules = session.profile.pin
    if not text:
        raise PinEntryError("PIN: nothing entered", kind="length")
    if not text.isascii() or not text.isdigit():
        raise InvalidInput("PIN: only decimal digits are allowed", kind="chars")
    if not rules.min_digits <= len(text) <= rules.max_digits:
        raise PinEntryError(
            f"PIN: {len(text)} digits, {rules.min_digits}..{rules.max_digits} allowed", kind="length"
        )
    return text


def initial_pin_of(ssn: str) -> str:
    """The initial PIN of a social security number (last 6, ``X`` -> ``0``);
    a malformed number raises the card model's InvalidInput subclass (-41/-42/-23)."""
    return Ssn.parse(ssn).initial_pin


def _card_initial_pin(session: CardSession, ssn: str | None, key_source: KeySource | None) -> str:
    if ssn is not None:
        return initial_pin_of(ssn)
    spec = file_spec(session, "EF06")
    authenticate_for(session, spec, key_source)
    raw = session.read_record(spec.sfi or 6, SSN_TAG)
    if raw is None:
        raise InvalidInput("the card holds no social security number (EF06 tag 08)", kind="parameter")
    value = ELEMENTS[SSN_TAG].decode(raw)
    try:
        return Ssn(str(value)).initial_pin
    except CardModelError:
        return str(value)[-6:].replace("X", "0")


def _pin_id(session: CardSession) -> int:
    return session.profile.pin.pin_id


def pin_status(session: CardSession) -> PinStatus:
    """PIN state (``ok`` / ``initial`` / ``blocked``), retries left and limit; spends no try."""
    with session.transaction(), journal_scope(session, "pin.status") as scope:
        status = pin_status_now(session)
        scope.add(state=status.state, retries_left=status.retries_left)
        return status


def ensure_transaction_allowed(session: CardSession) -> PinStatus:
    """Refuse a transaction while the initial PIN is set (-35) or the PIN is blocked (-52)."""
    status = pin_status_now(session)
    if status.state == "blocked":
        raise PinBlocked()
    if status.state == "initial":
        raise PinEntryError("the initial PIN is still set", kind="initial_pin_use")
    return status


def verify_pin(session: CardSession, pin: str, *, for_transaction: bool = False) -> PinOperationResult:
    """VERIFY the service password.  ``for_transaction``: first refuse the
    initial PIN (-35, no try spent).  Wrong: PinError (-51, ``retries_left``);
    blocked: PinBlocked (-52)."""
    with (
        session.transaction(),
        journal_scope(session, "pin.verify", {"for_transaction": for_transaction}) as scope,
    ):
        text = normalize_pin(session, pin)
        before = ensure_transaction_allowed(session) if for_transaction else pin_status_now(session)
        if before.state == "blocked":
            raise PinBlocked()
        block = encode_pin(text)
        session.send(CommandApdu(0x00, 0x20, 0x00, _pin_id(session), block, sensitive=True), context="pin")
        after = status_after(before, verified=True)
        scope.add(retries_left=after.retries_left)
        return PinOperationResult("verify", after)


def change_pin(
    session: CardSession,
    old_pin: str,
    new_pin: str,
    *,
    ssn: str | None = None,
    key_source: KeySource | None = None,
) -> PinOperationResult:
    """CHANGE PIN ``80 5E 01 01 <old> FF <new>``.

    The new PIN may not be the initial PIN (-36): the initial PIN comes from
    ``ssn`` when given, else from EF06 (external authentication with the
    reading key where the profile asks for it)."""
    with session.transaction():
        before = pin_status_now(session)
        details: dict[str, DetailValue] = {
            "initial_before": before.initial,
            "tries_before": before.retries_left,
        }
        with journal_scope(session, "pin.change", details) as scope:
            old = normalize_pin(session, old_pin)
            new = normalize_pin(session, new_pin, allow_x=False)
            if before.state == "blocked":
                raise PinBlocked()
            initial = _card_initial_pin(session, ssn, key_source)
            if hmac.compare_digest(new.encode(), initial.encode()):
                raise PinEntryError("the new PIN is the initial PIN", kind="initial_pin_reuse")
            data = encode_pin(old) + CHANGE_SEPARATOR + encode_pin(new)
            with scope.write("CHANGE PIN"):
                session.send(
                    CommandApdu(0x80, 0x5E, 0x01, _pin_id(session), data, sensitive=True), context="pin"
                )
            after = status_after(before, initial=False, verified=True)
            scope.add(retries_left=after.retries_left)
            return PinOperationResult("change", after)


def reset_pin(
    session: CardSession,
    *,
    new_pin: str | None = None,
    ssn: str | None = None,
    key_source: KeySource | None = None,
) -> PinOperationResult:
    """RELOAD PIN with the PRK MAC: to the initial PIN (``new_pin`` None; the
    card sets the "initial" flag) or to a chosen PIN (not the initial one, -36)."""
    with session.transaction():
        before = pin_status_now(session)
        details: dict[str, DetailValue] = {
            "target": "initial" if new_pin is None else "chosen",
            "initial_before": before.initial,
            "tries_before": before.retries_left,
        }
        with journal_scope(session, "pin.reset", details) as scope:
            chosen = None if new_pin is None else normalize_pin(session, new_pin, allow_x=False)
            initial = _card_initial_pin(session, ssn, key_source)
            if chosen is not None and hmac.compare_digest(chosen.encode(), initial.encode()):
                raise PinEntryError("the chosen PIN is the initial PIN", kind="initial_pin_reuse")
            value = initial if chosen is None else chosen
            p2 = _pin_id(session) | (RELOAD_INITIAL if chosen is None else 0)
            command = session.prepare_secure(
                CommandApdu(0x80, 0x5E, 0x00, p2, encode_pin(value), sensitive=True), KeyRole.PRK, key_source
            )
            with scope.write("RELOAD PIN"):
                session.send(command, context="key")
            after = status_after(before, initial=chosen is None)
            scope.add(retries_left=after.retries_left)
            return PinOperationResult("reset", after)


def unblock_pin(session: CardSession, *, key_source: KeySource | None = None) -> PinOperationResult:
    """PIN UNBLOCK with the PUK MAC: the try counter is restored, the PIN unchanged."""
    with session.transaction():
        before = pin_status_now(session)
        with journal_scope(session, "pin.unblock", {"tries_before": before.retries_left}) as scope:
            command = session.prepare_secure(
                CommandApdu(0x80, 0x24, 0x00, _pin_id(session)), KeyRole.PUK, key_source
            )
            with scope.write("PIN UNBLOCK"):
                session.send(command, context="key")
            after = status_after(before)
            scope.add(retries_left=after.retries_left)
            return PinOperationResult("unblock", after)
