"""Consulting the card status registry when a card is presented.

A :class:`PresentationGate` given to :class:`~terminal.session.CardSession`
(``gate=``) runs at every ``connect()``:

1. It settles the card's incomplete journal entries first (a crash or a
   tear of an earlier flow, :func:`terminal.flows.resolve_torn`; not with
   the null journal), so they are judged against the card as it was left.
2. It asks the registry what to do with the card
   (:meth:`terminal.registry.Registry.check_presented`) and journals the
   answer as ``card.present`` (result ``ok``, ``refused`` with the decision's
   national code, or ``failed`` with -1166 when the registry cannot be
   reached).
3. A card the registry refuses with ``block_on_card`` has its application
   blocked on the card, as a terminal does with a blacklisted card, through
   the ordinary :func:`terminal.flows.block` flow (journaled ``card.block``
   with ``reason``); the mode comes from ``terminal/data/presentation.toml``
   (a formal loss: temporary, so that a release can undo it; replaced or
   cancelled: permanent).
4. A temporarily blocked application of a card the registry knows and
   allows again (loss released, temporary loss lapsed) is unblocked
   (``card.unblock``).

The result is :attr:`CardSession.presentation` (:class:`Presentation`).
Afterwards every flow is admitted by :meth:`PresentationGate.admit` (called
right after the flow's journal ``begin``, so refusals are journaled, before
any command that could change the card):

- on a refused card only the operations marked ``on_refused_card`` run (the
  status queries, a further block); the others raise
  :class:`~terminal.registry.errors.CardRefused` with the decision's code;
- while a configured registry cannot be reached, operations marked
  ``needs_registry`` raise :class:`~terminal.registry.errors.RegistryUnavailable`
  (-1166) and the others keep working; the next presentation asks again;
- an agent (``Actor.agent``) may only run what maps to the registry's agent
  operations (activation, temporary loss report, password change, status
  query); anything else raises
  :class:`~terminal.registry.errors.AgentNotPermitted` (-1131).

All three are ``RegistryRefused`` errors: CLI exit code 10.  Without a
registry (``registry=None``) only the agent rule applies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from apdu.errors import SscardError, TransportError
from card_model.lifecycle import LifeCycle
from terminal._data import load_data
from terminal.flows.results import TornResolution
from terminal.journal_hook import DetailValue, NullJournal, RegistryJournal
from terminal.registry import Actor, Decision, Journal, Registry, open_registry, resolve_url, rules
from terminal.registry.errors import (
    CardRefused,
    InvalidActor,
    RegistryInputError,
    RegistryStorageError,
    RegistryUnavailable,
)
from terminal.registry.timeutil import Clock

if TYPE_CHECKING:
    from terminal.session import CardSession

__all__ = [
    "Availability",
    "BlockMode",
    "Enforcement",
    "OperationRule",
    "Presentation",
    "PresentationGate",
    "PresentationPolicy",
]

log = logging.getLogger("sscard.presentation")

Availability = Literal["checked", "unavailable", "not_configured"]
Enforcement = Literal["none", "blocked", "already_blocked", "unblocked", "failed"]
BlockMode = Literal["temporary", "permanent"]
_BLOCKED = {
    "temporary": (LifeCycle.TEMPORARILY_BLOCKED, LifeCycle.PERMANENTLY_BLOCKED, LifeCycle.CARD_BLOCKED),
    "permanent": (LifeCycle.PERMANENTLY_BLOCKED, LifeCycle.CARD_BLOCKED),
}


@dataclass(frozen=True, slots=True)
class OperationRule:
    """How the gate treats one card flow (``terminal/data/presentation.toml``)."""

    registry_operation: str
    needs_registry: bool
    on_refused_card: bool


@dataclass(frozen=True, slots=True)
class PresentationPolicy:
    """The gate's data: block modes by reason, flow rules, unblocking."""

    journal_operation: str
    unblock_when_allowed: bool
    block_modes: Mapping[str, BlockMode]
    default_block_mode: BlockMode
    operations: Mapping[str, OperationRule]

    @classmethod
    def load(cls) -> PresentationPolicy:
        return _default_policy()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PresentationPolicy:
        modes: dict[str, BlockMode] = {}
        for reason, mode in data["block_mode"].items():
            if mode not in ("temporary", "permanent"):
                raise RegistryInputError(
                    f"presentation block_mode.{reason} must be temporary or permanent",
                    detail_zh=f"锁卡方式 {reason} 须为 temporary 或 permanent",
                )
            modes[reason] = mode
        default = modes.pop("default", "permanent")
        operations = {
            name: OperationRule(
                str(row["registry_operation"]), bool(row["needs_registry"]), bool(row["on_refused_card"])
            )
            for name, row in data["operation"].items()
        }
        section = data["presentation"]
        return cls(
            journal_operation=str(section["journal_operation"]),
            unblock_when_allowed=bool(section["unblock_when_allowed"]),
            block_modes=modes,
            default_block_mode=default,
            operations=operations,
        )

    def block_mode(self, reason_id: str) -> BlockMode:
        return self.block_modes.get(reason_id, self.default_block_mode)

    def rule(self, operation: str, details: Mapping[str, DetailValue] | None = None) -> OperationRule:
        """The rule of ``operation`` (``card.block`` by its ``mode`` detail); an
        unlisted operation needs the registry, is refused on refused cards and
        is closed to agents."""
        mode = (details or {}).get("mode")
        if mode is not None:
            rule = self.operations.get(f"{operation}:{mode}")
            if rule is not None:
                return rule
        return self.operations.get(operation, OperationRule(operation, True, False))


@cache
def _default_policy() -> PresentationPolicy:
    return PresentationPolicy.from_mapping(load_data("presentation"))


@dataclass(frozen=True, slots=True)
class Presentation:
    """What the registry said about the card in the session, and what the terminal did."""

    card_id: str
    availability: Availability
    decision: Decision | None = None
    enforcement: Enforcement = "none"
    block_mode: BlockMode | None = None
    life_cycle: LifeCycle | None = None
    registry_error: str | None = None
    enforcement_error: str | None = None
    settled: TornResolution | None = None

    @property
    def refused(self) -> bool:
        return self.decision is not None and not self.decision.allowed

    @property
    def blocked(self) -> bool:
        return self.enforcement in ("blocked", "already_blocked")

    @property
    def suspended(self) -> frozenset[str]:
        """Card functions the registry suspends (``medical``, ``financial`` ...)."""
        return self.decision.suspended if self.decision is not None else frozenset()

    def refusal(self) -> CardRefused | None:
        """The error flows raise on this card (None when the registry did not refuse it)."""
        if self.decision is None or self.decision.allowed:
            return None
        return CardRefused.from_decision(self.decision, blocked=self.blocked)

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision.to_json() if self.decision is not None else None
        return {
            "card_id": self.card_id,
            "registry": self.availability,
            "allowed": None if self.decision is None else self.decision.allowed,
            "decision": decision,
            "enforcement": self.enforcement,
            "block_mode": self.block_mode,
            "life_cycle": None if self.life_cycle is None else self.life_cycle.label,
            "registry_error": self.registry_error,
            "enforcement_error": self.enforcement_error,
            "settled": None if self.settled is None else self.settled.to_dict()["entries"],
        }


RegistrySource = Registry | Callable[[], Registry] | None


class PresentationGate:
    """The terminal's registry check; see the module docstring.

    ``registry``: an opened :class:`~terminal.registry.Registry`, a callable
    opening one (called again at the next presentation after it failed, so a
    terminal can start while the database is down), or None (no registry:
    only the agent rule applies).  ``actor``: who works at this terminal.
    """

    def __init__(
        self,
        registry: RegistrySource,
        *,
        actor: Actor,
        policy: PresentationPolicy | None = None,
    ) -> None:
        if not isinstance(actor, Actor):
            raise InvalidActor("actor must be an Actor", detail_zh="经办人信息缺失")
        self.actor = actor
        self.policy = policy if policy is not None else PresentationPolicy.load()
        self._registry: Registry | None = registry if isinstance(registry, Registry) else None
        self._opener: Callable[[], Registry] | None = (
            None if registry is None or isinstance(registry, Registry) else registry
        )
        self.configured = registry is not None
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        actor: Actor,
        policy: PresentationPolicy | None = None,
        clock: Clock | None = None,
    ) -> PresentationGate:
        """A gate on the registry at ``url`` (None: ``$SSCARD_DB_URL`` or the
        default file), opened at the first presentation (an unsupported URL
        raises :class:`~terminal.registry.errors.RegistryUrlInvalid` here)."""
        resolve_url(url)

        def opener() -> Registry:
            registry, _ = open_registry(url, clock=clock)
            return registry

        return cls(opener, actor=actor, policy=policy)

    def journal_hook(self, journal: Journal) -> RegistryJournal:
        """A journal hook recording this gate's operator, terminal and agent."""
        agent = self.actor.agent.describe() if self.actor.agent is not None else None
        return RegistryJournal(
            journal, terminal=self.actor.terminal, operator=self.actor.operator, agent=agent
        )

    def close(self) -> None:
        """Close a registry the gate opened itself (one passed in stays open)."""
        with self._lock:
            if self._registry is not None and self._opener is not None:
                self._registry.close()
                self._registry = None

    # -- asking the registry ---------------------------------------------------------------

    def _open_registry(self) -> Registry | None:
        with self._lock:
            if self._registry is None and self._opener is not None:
                self._registry = self._opener()
            return self._registry

    def check(self, card_id: str) -> tuple[Availability, Decision | None, RegistryStorageError | None]:
        """The registry's decision on ``card_id``, or why there is none."""
        if not self.configured:
            return "not_configured", None, None
        try:
            registry = self._open_registry()
            if registry is None:
                return "not_configured", None, None
            return "checked", registry.check_presented(card_id), None
        except RegistryStorageError as exc:
            log.warning("registry unavailable at presentation: %s", exc.error_id)
            return "unavailable", None, exc

    # -- presentation ------------------------------------------------------------------------

    def present(self, session: CardSession) -> Presentation:
        """Check the card in ``session`` (just detected) and enforce the decision."""
        card_id = session.card_id
        hook = session.journal
        settled = _settle_torn(session)
        entry = hook.begin(self.policy.journal_operation, card_id=card_id, details={})
        try:
            availability, decision, error = self.check(card_id)
        except BaseException as exc:
            code = exc.national_code if isinstance(exc, SscardError) else -1000
            try:
                hook.complete(entry, result="failed", national_code=code)
            except SscardError as journal_exc:
                log.error("journal: completing entry %s failed: %s", entry, journal_exc.error_id)
            raise
        hook.complete(entry, **_present_outcome(availability, decision, error))
        presentation = Presentation(
            card_id,
            availability,
            decision,
            registry_error=None if error is None else error.error_id,
            settled=settled,
        )
        if decision is None:
            return presentation
        if not decision.allowed and decision.block_on_card:
            return self._block(session, presentation, decision)
        if (
            decision.allowed
            and decision.known
            and self.policy.unblock_when_allowed
            and session.info.application_blocked
        ):
            return self._unblock(session, presentation, decision)
        return presentation

    def _block(self, session: CardSession, presentation: Presentation, decision: Decision) -> Presentation:
        from terminal import flows

        mode = self.policy.block_mode(decision.reason_id)
        now = _life_cycle(session)
        if now in _BLOCKED[mode]:
            return replace(presentation, enforcement="already_blocked", block_mode=mode, life_cycle=now)
        with _enforcing(session) as failed:
            result = flows.block(session, mode, reason=decision.reason_id)
            return replace(presentation, enforcement="blocked", block_mode=mode, life_cycle=result.after)
        return replace(
            presentation, enforcement="failed", block_mode=mode, life_cycle=now, enforcement_error=failed[0]
        )

    def _unblock(self, session: CardSession, presentation: Presentation, decision: Decision) -> Presentation:
        from terminal import flows

        now = _life_cycle(session)
        if now is not LifeCycle.TEMPORARILY_BLOCKED:
            return replace(presentation, life_cycle=now)
        with _enforcing(session) as failed:
            result = flows.unblock(session, reason=decision.reason_id)
            return replace(presentation, enforcement="unblocked", life_cycle=result.after)
        return replace(presentation, enforcement="failed", life_cycle=now, enforcement_error=failed[0])

    # -- admitting flows -----------------------------------------------------------------------

    def admit(
        self,
        presentation: Presentation | None,
        operation: str,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        """Raise if the flow ``operation`` may not run on this card, now, for this actor."""
        rule = self.policy.rule(operation, details)
        refusal = presentation.refusal() if presentation is not None else None
        if refusal is not None and not rule.on_refused_card:
            raise refusal
        rules.check_agent(rule.registry_operation, self.actor)
        if presentation is not None and presentation.availability == "unavailable" and rule.needs_registry:
            raise RegistryUnavailable(
                presentation.registry_error or "registry_storage_error",
                operation=rule.registry_operation,
                detail_zh=presentation.registry_error or "registry_storage_error",
            )


def _present_outcome(
    availability: Availability, decision: Decision | None, error: RegistryStorageError | None
) -> dict[str, Any]:
    details: dict[str, DetailValue] = {"registry": availability}
    if decision is not None:
        details.update(reason=decision.reason_id, allowed=decision.allowed)
        if decision.status is not None:
            details["status"] = decision.status
        if decision.suspended and decision.allowed:
            details["suspended"] = ",".join(sorted(decision.suspended))
        if not decision.allowed:
            return {"result": "refused", "national_code": decision.national_code, "details": details}
    if error is not None:
        details["registry_error"] = error.error_id
        return {"result": "failed", "national_code": RegistryUnavailable.national_code, "details": details}
    return {"result": "ok", "details": details}


def _life_cycle(session: CardSession) -> LifeCycle:
    with session.transaction():
        return session.life_cycle()


def _settle_torn(session: CardSession) -> TornResolution | None:
    """Settle the card's incomplete journal entries (None with the null journal
    or when settling failed; a card pulled meanwhile is raised)."""
    from terminal import flows

    if isinstance(session.journal, NullJournal):
        return None
    try:
        return flows.resolve_torn(session)
    except TransportError:
        raise
    except SscardError as exc:
        log.error("presentation: settling incomplete journal entries failed: %s", exc.error_id)
        return None


@contextmanager
def _enforcing(session: CardSession) -> Iterator[list[str]]:
    """Run the gate's own block / unblock: flows admitted without the gate's
    rules; a failure other than the card's disappearance is kept (its id in
    the yielded list) instead of raised: the card stays refused either way."""
    failed: list[str] = []
    with session.gate_bypass():
        try:
            yield failed
        except TransportError:
            raise
        except SscardError as exc:
            log.error("presentation: enforcing the registry decision failed: %s", exc.error_id)
            failed.append(exc.error_id)
