"""Application life cycle (docs/card-os.md §5) and the card status query.

ACTIVATE (启用), APPLICATION BLOCK temporary (临时挂失) / permanent,
APPLICATION UNBLOCK (解挂): each ``GET CHALLENGE 04`` then the command with
the application maintenance key's MAC (AMK).  The card decides whether the
transition is allowed (``6985`` otherwise; ``9303`` for a permanently
blocked application).  :func:`card_status` reads GET DATA DF01 (life
cycle), DF02 (PIN), DF04 (generation, profile version) and, after external
authentication with the EAK, DF03 (key try counters).
"""

from __future__ import annotations

from typing import Literal

from apdu.command import CommandApdu
from apdu.errors import InvalidInput, ProtocolError, TransportError
from card_model.keys import KeyRole, role_for_kid
from card_model.lifecycle import LifeCycle
from terminal.flows._common import journal_scope, pin_status_now
from terminal.flows.results import CardStatusResult, KeyCounter, LifeCycleResult
from terminal.keysource.base import KeySource
from terminal.session import CardSession, get_data_tag

__all__ = ["BlockMode", "activate", "block", "card_status", "unblock"]

BlockMode = Literal["temporary", "permanent"]

_BLOCK_P2: dict[str, int] = {"temporary": 0x00, "permanent": 0x01}
_BLOCK_TARGET: dict[str, LifeCycle] = {
    "temporary": LifeCycle.TEMPORARILY_BLOCKED,
    "permanent": LifeCycle.PERMANENTLY_BLOCKED,
}


def _life_cycle_change(
    session: CardSession,
    operation: str,
    command: CommandApdu,
    what: str,
    key_source: KeySource | None,
    target: LifeCycle | None,
    details: dict[str, str | int | bool] | None = None,
) -> LifeCycleResult:
    with session.transaction():
        before = session.life_cycle()
        with journal_scope(
            session, operation, {"life_cycle_before": before.label, **(details or {})}
        ) as scope:
            wrapped = session.prepare_secure(command, KeyRole.AMK, key_source)
            with scope.write(what):
                session.send(wrapped, context="key")
            after = target
            if after is None:
                try:
                    after = session.life_cycle()
                except (TransportError, ProtocolError):
                    after = None
            if after is not None:
                scope.add(life_cycle=after.label)
            return LifeCycleResult(operation.removeprefix("card."), before, after)


def activate(session: CardSession, *, key_source: KeySource | None = None) -> LifeCycleResult:
    """ACTIVATE ``84 44 00 00 04 MAC``: personalised (01) -> active (02)."""
    return _life_cycle_change(
        session,
        "card.activate",
        CommandApdu(0x80, 0x44, 0x00, 0x00),
        "ACTIVATE",
        key_source,
        LifeCycle.ACTIVE,
    )


def _reason(reason: str | None) -> dict[str, str | int | bool]:
    return {} if reason is None else {"reason": reason}


def block(
    session: CardSession,
    mode: BlockMode = "temporary",
    *,
    key_source: KeySource | None = None,
    reason: str | None = None,
) -> LifeCycleResult:
    """APPLICATION BLOCK ``84 1E 00 P2 04 MAC``: ``temporary`` (loss report, 03)
    or ``permanent`` (04).  ``reason`` (journal detail): why, e.g. the registry's
    reason id when the presentation gate blocks a refused card."""
    if mode not in _BLOCK_P2:
        raise InvalidInput("block mode must be 'temporary' or 'permanent'", kind="parameter")
    return _life_cycle_change(
        session,
        "card.block",
        CommandApdu(0x80, 0x1E, 0x00, _BLOCK_P2[mode]),
        "APPLICATION BLOCK",
        key_source,
        _BLOCK_TARGET[mode],
        {"mode": mode, **_reason(reason)},
    )


def unblock(
    session: CardSession, *, key_source: KeySource | None = None, reason: str | None = None
) -> LifeCycleResult:
    """APPLICATION UNBLOCK ``84 18 00 00 04 MAC``: 03 -> the state before the block."""
    return _life_cycle_change(
        session,
        "card.unblock",
        CommandApdu(0x80, 0x18, 0x00, 0x00),
        "APPLICATION UNBLOCK",
        key_source,
        None,
        _reason(reason),
    )


def _key_counters(raw: bytes) -> tuple[KeyCounter, ...]:
    if len(raw) % 3:
        raise ProtocolError("GET DATA DF03: a multiple of 3 bytes expected")
    out = []
    for index in range(0, len(raw), 3):
        kid, tries, limit = raw[index : index + 3]
        role = role_for_kid(kid)
        out.append(KeyCounter(kid, role.value if role is not None else f"{kid:02X}", tries, limit))
    return tuple(out)


def card_status(
    session: CardSession, *, key_source: KeySource | None = None, key_counters: bool | None = None
) -> CardStatusResult:
    """Life cycle, PIN state and retries, generation / profile version and, when
    a key source is available (or ``key_counters=True``), the key try counters
    (external authentication with the EAK first).  Spends no PIN try."""
    source = key_source if key_source is not None else session.key_source
    want_keys = source is not None if key_counters is None else key_counters
    with session.transaction(), journal_scope(session, "card.status", {"counters": want_keys}) as scope:
        life_cycle = session.life_cycle()
        pin = pin_status_now(session)
        version = session.get_data(get_data_tag("version"))
        if len(version) != 3:
            raise ProtocolError("GET DATA DF04: 3 bytes expected")
        keys = None
        if want_keys:
            session.external_authenticate(KeyRole.EAK, key_source)
            keys = _key_counters(session.get_data(get_data_tag("key_counters")))
        scope.add(life_cycle=life_cycle.label, state=pin.state, retries_left=pin.retries_left)
        return CardStatusResult(
            generation=version[0],
            profile_version=f"{version[1]}.{version[2]}",
            life_cycle=life_cycle,
            pin=pin,
            keys=keys,
        )
