"""Helpers shared by the flows: journal scope, read access, PIN state."""

from __future__ import annotations

from collections.abc import Mapping

from apdu.command import CommandApdu
from apdu.errors import (
    AuthMethodBlocked,
    FileNotFound,
    InsNotSupported,
    KeyNotFound,
    ProtocolError,
    VerificationFailed,
)
from card_model.keys import KeyRole, role_for_kid
from card_model.profile import FileSpec
from terminal._data import load_data
from terminal.flows.results import PinState, PinStatus
from terminal.journal_hook import DetailValue, JournalScope
from terminal.keysource.base import KeySource
from terminal.session import CardSession, get_data_tag

__all__ = ["authenticate_for", "file_spec", "journal_scope", "pin_status_now", "status_after"]


def journal_scope(
    session: CardSession, operation: str, details: Mapping[str, DetailValue] | None = None
) -> JournalScope:
    """The flow's journal entry; the session admits the flow right after ``begin``."""
    admitted = dict(details or {})
    return JournalScope(
        session.journal,
        operation,
        session.card_id,
        details,
        guard=lambda: session.admit(operation, admitted),
    )


def file_spec(session: CardSession, name: str) -> FileSpec:
    spec = session.profile.file_named(name)
    if spec is None:
        raise FileNotFound(0x6A82, f"the {session.profile.name} profile has no file {name}")
    return spec


def authenticate_for(session: CardSession, spec: FileSpec, key_source: KeySource | None) -> bool:
    """External authentication needed to read ``spec`` (per the profile); True if done."""
    access = spec.read
    if access.kind != "auth" or access.kid is None:
        return False
    session.external_authenticate(role_for_kid(access.kid) or KeyRole.RK, key_source)
    return True


def _flags() -> tuple[int, int]:
    table = load_data("cards")["get_data"]
    return int(table["pin_flag_initial"]), int(table["pin_flag_verified"])


def pin_status_now(session: CardSession) -> PinStatus:
    """PIN state without spending a try: GET DATA DF02, else VERIFY without data."""
    try:
        raw = session.get_data(get_data_tag("pin"))
    except (KeyNotFound, InsNotSupported):
        raw = b""
    if len(raw) == 3:
        tries, limit, flags = raw
        initial_flag, verified_flag = _flags()
        state: PinState = "blocked" if tries == 0 else ("initial" if flags & initial_flag else "ok")
        return PinStatus(state, tries, limit, bool(flags & verified_flag), bool(flags & initial_flag))
    if raw:
        raise ProtocolError("GET DATA DF02: 3 bytes expected")
    limit = session.profile.pin.try_limit
    try:
        session.send(CommandApdu(0x00, 0x20, 0x00, session.profile.pin.pin_id), context="pin")
    except AuthMethodBlocked:
        return PinStatus("blocked", 0, limit)
    except VerificationFailed as exc:
        return PinStatus("ok", exc.retries_left if exc.retries_left is not None else limit, limit)
    return PinStatus("ok", limit, limit, True)


def status_after(before: PinStatus, *, initial: bool | None = None, verified: bool = False) -> PinStatus:
    """The PIN status after a successful PIN command (tries restored to the limit)."""
    keep_initial = before.initial if initial is None else initial
    return PinStatus(
        "initial" if keep_initial else "ok", before.max_tries, before.max_tries, verified, keep_initial
    )
