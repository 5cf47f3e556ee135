"""The Beijing card-service rules as pure functions of a card's stored state and the time.

Nothing here touches the database: the registry locks and reads a card row,
asks these functions what may happen, and writes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from terminal.registry import catalog
from terminal.registry.errors import (
    AgentNotPermitted,
    CardAlreadyActive,
    CardAlreadyLost,
    CardClosed,
    CardNotLost,
    CardStateRefused,
    FinancialBeforeSocialSecurity,
    ReplacedCardReleaseRefused,
    ReplacementGenerationRefused,
)
from terminal.registry.models import Actor, Decision
from terminal.registry.timeutil import add_months

BEIJING = timezone(timedelta(hours=8))
LIVE = frozenset({"issued", "active", "temp_lost", "lost"})
CLOSED = frozenset({"replaced", "cancelled"})


@dataclass(frozen=True)
class CardState:
    """The stored facts the rules look at."""

    card_id: str
    status: str
    status_since: datetime
    activated_at: datetime | None
    medical_ended_at: datetime | None


def temp_loss_until(state: CardState) -> datetime | None:
    """When a temporary loss report lapses (None if the card is not temporarily lost)."""
    if state.status != "temp_lost":
        return None
    return state.status_since + timedelta(days=catalog.rules().temporary_loss_days)


def lapsed(state: CardState, now: datetime) -> bool:
    until = temp_loss_until(state)
    return until is not None and now >= until


def effective_status(state: CardState, now: datetime) -> str:
    """The stored status with a lapsed temporary loss report taken back."""
    if lapsed(state, now):
        return "active" if state.activated_at is not None else "issued"
    return state.status


def _refuse(operation: str, state: CardState, status: str) -> CardStateRefused:
    if status in CLOSED:
        return CardClosed(card_id=state.card_id, status=status)
    return CardStateRefused(card_id=state.card_id, status=status, operation=operation)


def after_activate(state: CardState, status: str) -> str:
    if status == "issued":
        return "active"
    if status == "active":
        raise CardAlreadyActive(card_id=state.card_id)
    raise _refuse("activate", state, status)


def after_temporary_loss(state: CardState, status: str) -> str:
    if status in ("issued", "active"):
        return "temp_lost"
    if status in ("temp_lost", "lost"):
        raise CardAlreadyLost(card_id=state.card_id, status=status)
    raise _refuse("report_loss_temporary", state, status)


def after_formal_loss(state: CardState, status: str) -> str:
    if status in ("issued", "active", "temp_lost"):
        return "lost"
    if status == "lost":
        raise CardAlreadyLost(card_id=state.card_id, status=status)
    raise _refuse("report_loss_formal", state, status)


def after_release(state: CardState, status: str) -> str:
    if status in ("temp_lost", "lost"):
        return "active" if state.activated_at is not None else "issued"
    if status == "replaced":
        raise ReplacedCardReleaseRefused(card_id=state.card_id)
    if status in CLOSED or status == "ss_cancelled":
        raise CardClosed(card_id=state.card_id, status=status)
    raise CardNotLost(card_id=state.card_id, status=status)


def after_replace(state: CardState, status: str) -> str:
    """Replacement of a lost card (after a formal report) or exchange of a card in hand."""
    if status in ("issued", "active", "lost"):
        return "replaced"
    if status == "ss_cancelled":
        raise CardClosed(card_id=state.card_id, status=status)
    raise _refuse("replace", state, status)


def after_cancel_social_security(state: CardState, status: str) -> str:
    if status in LIVE:
        return "ss_cancelled"
    raise _refuse("cancel_social_security", state, status)


def after_cancel_financial(state: CardState, status: str) -> str:
    if status == "ss_cancelled":
        return "cancelled"
    if status in LIVE:
        raise FinancialBeforeSocialSecurity(card_id=state.card_id)
    raise _refuse("cancel_financial", state, status)


def after_change_bank(state: CardState, status: str) -> str:
    if status in ("issued", "active"):
        return "cancelled"
    if status == "ss_cancelled":
        raise CardClosed(card_id=state.card_id, status=status)
    raise _refuse("change_bank", state, status)


def check_replacement_generation(old: int, new: int) -> None:
    allowed = catalog.rules().replacement_generations.get(old, frozenset())
    if new not in allowed:
        raise ReplacementGenerationRefused(
            old=old, new=new, allowed="/".join(str(g) for g in sorted(allowed)) or "-"
        )


def check_bank_change_generation(old: int, new: int) -> None:
    """A change of bank issues a new card of the same or a newer generation."""
    if new < old:
        raise ReplacementGenerationRefused(old=old, new=new, allowed="/".join(str(g) for g in range(old, 4)))


def next_bank_change(last_change: datetime) -> datetime:
    return add_months(last_change, catalog.rules().bank_change_min_months)


def medical_ended_generations(generation: int) -> frozenset[int]:
    """Generations whose medical settlement stops when a card of `generation` is activated."""
    return catalog.rules().activation_ends_medical_on.get(generation, frozenset())


def check_agent(operation: str, actor: Actor) -> None:
    if actor.agent is not None and operation not in catalog.rules().agent_operations:
        raise AgentNotPermitted(operation=operation)


def beijing_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def decide(state: CardState | None, card_id: str, now: datetime) -> Decision:
    """What a terminal must do with a presented card."""
    if state is None:
        reason_id = (
            "card_not_registered"
            if catalog.rules().unknown_card_policy == "allow"
            else "card_not_registered_refused"
        )
        return _decision(card_id, reason_id, known=False, status=None)
    status = effective_status(state, now)
    until: datetime | None = None
    extra: frozenset[str] = frozenset()
    if status == "temp_lost":
        reason_id, until = "card_temporarily_lost", temp_loss_until(state)
    elif status == "issued":
        reason_id = "card_not_activated"
    elif status == "active":
        reason_id = "temporary_loss_lapsed" if lapsed(state, now) else "card_ok"
        if lapsed(state, now):
            extra = catalog.rules().suspends_after_lapse
    elif status == "ss_cancelled":
        months = catalog.rules().financial_restriction_months
        long_ago = now >= add_months(state.status_since, months)
        reason_id = "card_ss_cancelled_long" if long_ago else "card_ss_cancelled"
    else:
        reason_id = {"lost": "card_lost", "replaced": "card_replaced", "cancelled": "card_cancelled"}[status]
    reason = catalog.reasons()[reason_id]
    if state.medical_ended_at is not None and reason.allowed:
        extra = extra | {"medical"}
        if reason_id == "card_ok":
            reason_id = "medical_moved_to_new_card"
    return _decision(card_id, reason_id, known=True, status=status, until=until, extra=extra)


def _decision(
    card_id: str,
    reason_id: str,
    *,
    known: bool,
    status: str | None,
    until: datetime | None = None,
    extra: frozenset[str] = frozenset(),
) -> Decision:
    reason = catalog.reasons()[reason_id]
    shown = beijing_time(until) if until is not None else ""
    return Decision(
        card_id=card_id,
        known=known,
        allowed=reason.allowed,
        reason_id=reason_id,
        message_zh=reason.zh.format(until=f"{shown}（北京时间）"),
        message_en=reason.en.format(until=f"{shown} Beijing time"),
        national_code=reason.national_code,
        suspended=reason.suspends | extra,
        block_on_card=reason.block_on_card,
        status=status,
        until=until,
    )
