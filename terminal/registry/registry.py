"""The card status registry: holders, cards, status history, and the Beijing rules.

Every change runs in one write transaction that first locks the holder row and
then the card rows it touches (SELECT ... FOR UPDATE on PostgreSQL; SQLite
serialises writers with BEGIN IMMEDIATE), re-reads the card, asks `rules` what
may happen, updates the card only if its version is unchanged, appends to the
status history and writes a completed journal entry. A refusal raises before
anything is written, and the transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.exc import IntegrityError

from terminal.registry import catalog, rules, sanitize, validation
from terminal.registry.db import Database
from terminal.registry.errors import (
    BankChangeTooSoon,
    BankUnchanged,
    CardAlreadyRegistered,
    CardNotFound,
    HolderAlreadyRegistered,
    HolderNotFound,
    InvalidActor,
    InvalidCardData,
    RegistryConflict,
    ReplacementBankMismatch,
)
from terminal.registry.journal import insert_begin, insert_follow_up
from terminal.registry.models import Actor, AgentInfo, CardEvent, CardRecord, Decision, HolderRecord, NewCard
from terminal.registry.rules import CardState
from terminal.registry.sanitize import mask_ssn
from terminal.registry.schema import card_events, cards, holders
from terminal.registry.timeutil import Clock, system_clock, utc

SYSTEM_ACTOR = Actor(operator="system", terminal="registry")
_successor = cards.alias("successor")
_CARD_SELECT = select(
    cards, holders.c.name.label("holder_name"), _successor.c.card_id.label("replaced_by")
).select_from(
    cards.join(holders, holders.c.ssn == cards.c.ssn).outerjoin(
        _successor, _successor.c.replaces == cards.c.card_id
    )
)


def _state(row: Row[Any]) -> CardState:
    m = row._mapping
    return CardState(
        card_id=m["card_id"],
        status=m["status"],
        status_since=m["status_since"],
        activated_at=m["activated_at"],
        medical_ended_at=m["medical_ended_at"],
    )


class _ActorText:
    """An actor checked and reduced to what the history and the journal keep."""

    def __init__(self, actor: object) -> None:
        if not isinstance(actor, Actor):
            raise InvalidActor("actor must be an Actor", detail_zh="经办人信息缺失")
        self.operator = sanitize.free_text(actor.operator, "operator", error=InvalidActor)
        self.terminal = sanitize.free_text(actor.terminal, "terminal", error=InvalidActor)
        self.agent: str | None = None
        if actor.agent is not None:
            agent = actor.agent
            if not isinstance(agent, AgentInfo):
                raise InvalidActor("agent must be an AgentInfo", detail_zh="代办人信息无效")
            # limits keep the stored description within its 300-character column
            for field, limit in (("name", 60), ("id_number", 40), ("authorisation", 100)):
                sanitize.free_text(getattr(agent, field), f"agent {field}", limit=limit, error=InvalidActor)
            self.agent = sanitize.mask_text(agent.describe())


class Registry:
    """Card status registry. Obtain one with `terminal.registry.open_registry`."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or system_clock

    def _now(self) -> datetime:
        return utc(self._clock())

    def close(self) -> None:
        self._db.dispose()

    # -- registration -----------------------------------------------------

    def register_holder(
        self,
        ssn: str,
        name: str,
        *,
        gender: str | None = None,
        birth_date: date | str | None = None,
        actor: Actor = SYSTEM_ACTOR,
    ) -> HolderRecord:
        holder_ssn = validation.ssn(ssn)
        row = {
            "ssn": holder_ssn,
            "name": validation.holder_name(name),
            "gender": validation.gender(gender),
            "birth_date": None if birth_date is None else validation.date_value(birth_date, "birth_date"),
        }
        who = _ActorText(actor)
        now = self._now()
        try:
            with self._db.write() as conn:
                if conn.execute(select(holders.c.ssn).where(holders.c.ssn == holder_ssn)).first() is not None:
                    raise HolderAlreadyRegistered(holder=mask_ssn(holder_ssn))
                conn.execute(holders.insert().values(**row, registered_at=now))
                self._journal(conn, now, "register_holder", None, who, {"ssn": mask_ssn(holder_ssn)})
                return self._holder(conn, holder_ssn)
        except IntegrityError:
            raise HolderAlreadyRegistered(holder=mask_ssn(holder_ssn)) from None

    def register_card(
        self,
        card_id: str,
        card_number: str,
        ssn: str,
        generation: int,
        bank: str,
        issue_date: date | str,
        expiry_date: date | str,
        status: str = "issued",
        *,
        actor: Actor = SYSTEM_ACTOR,
    ) -> CardRecord:
        """Register a card of a registered holder, as issued (default) or already active."""
        cid = validation.card_id(card_id)
        number = validation.card_number(card_number)
        holder_ssn = validation.ssn(ssn)
        gen = validation.generation(generation)
        bank_code = validation.bank(bank).code
        issue, expiry = validation.validity(issue_date, expiry_date)
        if status not in ("issued", "active"):
            raise InvalidCardData(
                "a card is registered as issued or active", detail_zh="登记时卡状态须为已制卡或正常"
            )
        who = _ActorText(actor)
        now = self._now()
        try:
            with self._db.write() as conn:
                self._lock_holder(conn, holder_ssn)
                self._insert_card(
                    conn,
                    now,
                    cid,
                    number,
                    holder_ssn,
                    gen,
                    bank_code,
                    issue,
                    expiry,
                    status,
                    activated_at=now if status == "active" else None,
                )
                self._event(conn, now, cid, "register_card", None, status, who)
                self._journal(conn, now, "register_card", cid, who, {"status": status, "bank": bank_code})
                return self._card(conn, cid, now)
        except IntegrityError:
            raise CardAlreadyRegistered(card_id=cid) from None

    # -- reading ----------------------------------------------------------

    def holder(self, ssn: str) -> HolderRecord:
        holder_ssn = validation.ssn(ssn)
        with self._db.read() as conn:
            return self._holder(conn, holder_ssn)

    def card(self, card_id: str) -> CardRecord:
        cid = validation.card_id(card_id)
        with self._db.read() as conn:
            return self._card(conn, cid, self._now())

    def exists(self, card_id: str) -> bool:
        cid = validation.card_id(card_id)
        with self._db.read() as conn:
            return conn.execute(select(cards.c.card_id).where(cards.c.card_id == cid)).first() is not None

    def cards_of(self, ssn: str) -> list[CardRecord]:
        """The holder's cards, oldest registration first."""
        holder_ssn = validation.ssn(ssn)
        now = self._now()
        with self._db.read() as conn:
            self._holder(conn, holder_ssn)
            rows = conn.execute(
                _CARD_SELECT.where(cards.c.ssn == holder_ssn).order_by(cards.c.registered_at, cards.c.card_id)
            )
            return [self._record(r, now) for r in rows]

    def history(self, card_id: str) -> list[CardEvent]:
        cid = validation.card_id(card_id)
        with self._db.read() as conn:
            self._card(conn, cid, self._now())
            rows = conn.execute(
                select(card_events).where(card_events.c.card_id == cid).order_by(card_events.c.id)
            )
            return [
                CardEvent(
                    id=int(r.id),
                    card_id=r.card_id,
                    at=r.at,
                    event=r.event,
                    from_status=r.from_status,
                    to_status=r.to_status,
                    operator=r.operator,
                    terminal=r.terminal,
                    agent=r.agent,
                    related_card_id=r.related_card_id,
                    note=r.note,
                )
                for r in rows
            ]

    def check_presented(self, card_id: str) -> Decision:
        """What a terminal must do with this card: allow, suspend functions, or refuse and block."""
        cid = validation.card_id(card_id)
        now = self._now()
        with self._db.read() as conn:
            row = conn.execute(select(cards).where(cards.c.card_id == cid)).first()
        return rules.decide(None if row is None else _state(row), cid, now)

    def authorize(self, operation: str, actor: Actor) -> None:
        """Refuse (AgentNotPermitted) an operation an agent may not do for the holder."""
        _ActorText(actor)
        rules.check_agent(operation, actor)

    # -- status changes ---------------------------------------------------

    def activate(self, card_id: str, actor: Actor) -> CardRecord:
        """Activate; a newer-generation card ends medical settlement on the holder's older cards."""
        return self._change("activate", card_id, actor, rules.after_activate, self._end_medical_on_older)

    def report_loss_temporary(self, card_id: str, actor: Actor) -> CardRecord:
        return self._change("report_loss_temporary", card_id, actor, rules.after_temporary_loss)

    def report_loss_formal(self, card_id: str, actor: Actor) -> CardRecord:
        return self._change("report_loss_formal", card_id, actor, rules.after_formal_loss)

    def release_loss(self, card_id: str, actor: Actor) -> CardRecord:
        return self._change("release_loss", card_id, actor, rules.after_release)

    def cancel_social_security(self, card_id: str, actor: Actor) -> CardRecord:
        return self._change("cancel_social_security", card_id, actor, rules.after_cancel_social_security)

    def cancel_financial(self, card_id: str, actor: Actor) -> CardRecord:
        return self._change("cancel_financial", card_id, actor, rules.after_cancel_financial)

    def replace(self, old_card_id: str, new_card: NewCard, actor: Actor) -> CardRecord:
        """Replace a card (lost after a formal report, or exchanged in hand); returns the new card."""
        new = _new_card(new_card)

        def new_bank(conn: Connection, old: Row[Any], now: datetime) -> str:
            rules.check_replacement_generation(old.generation, new["generation"])
            if new["bank"] is not None and new["bank"] != old.bank:
                raise ReplacementBankMismatch(bank=old.bank)
            return str(old.bank)

        return self._succeed("replace", old_card_id, actor, rules.after_replace, new, new_bank)

    def change_bank(self, card_id: str, new_bank: str, new_card: NewCard, actor: Actor) -> CardRecord:
        """Cancel the card and issue one with another partner bank; returns the new card."""
        bank_code = validation.bank(new_bank).code
        new = _new_card(new_card)
        if new["bank"] is not None and new["bank"] != bank_code:
            raise InvalidCardData(
                "new_card.bank differs from new_bank", detail_zh="新卡银行与变更后的银行不一致"
            )

        def checked_bank(conn: Connection, old: Row[Any], now: datetime) -> str:
            if bank_code == old.bank:
                raise BankUnchanged(bank=old.bank)
            last = conn.execute(
                select(func.max(card_events.c.at))
                .select_from(card_events.join(cards, cards.c.card_id == card_events.c.card_id))
                .where(cards.c.ssn == old.ssn, card_events.c.event == "change_bank")
            ).scalar()
            if last is not None:
                allowed_from = rules.next_bank_change(last)
                if now < allowed_from:
                    raise BankChangeTooSoon(
                        months=catalog.rules().bank_change_min_months,
                        allowed_from=rules.beijing_time(allowed_from),
                    )
            rules.check_bank_change_generation(old.generation, new["generation"])
            return bank_code

        return self._succeed("change_bank", card_id, actor, rules.after_change_bank, new, checked_bank)

    # -- machinery --------------------------------------------------------

    def _change(
        self,
        operation: str,
        card_id: str,
        actor: Actor,
        target: Callable[[CardState, str], str],
        after: Callable[[Connection, Row[Any], datetime, _ActorText], None] | None = None,
    ) -> CardRecord:
        cid = validation.card_id(card_id)
        who = _ActorText(actor)
        rules.check_agent(operation, actor)
        now = self._now()
        with self._db.write() as conn:
            row = self._lock_card(conn, cid)
            before = rules.effective_status(_state(row), now)
            self._apply(conn, now, operation, row, before, target(_state(row), before), who)
            if after is not None:
                after(conn, row, now, who)
            return self._card(conn, cid, now)

    def _succeed(
        self,
        operation: str,
        card_id: str,
        actor: Actor,
        target: Callable[[CardState, str], str],
        new: dict[str, Any],
        bank_for: Callable[[Connection, Row[Any], datetime], str],
    ) -> CardRecord:
        """Retire a card and issue its successor `new` (with the bank `bank_for` checks and names)."""
        cid = validation.card_id(card_id)
        who = _ActorText(actor)
        rules.check_agent(operation, actor)
        now = self._now()
        new_id = str(new["card_id"])
        try:
            with self._db.write() as conn:
                row = self._lock_card(conn, cid)
                before = rules.effective_status(_state(row), now)
                after = target(_state(row), before)
                bank_code = bank_for(conn, row, now)
                self._apply(conn, now, operation, row, before, after, who, related=new_id)
                self._insert_card(
                    conn,
                    now,
                    new_id,
                    new["card_number"],
                    row.ssn,
                    new["generation"],
                    bank_code,
                    new["issue_date"],
                    new["expiry_date"],
                    "issued",
                    replaces=cid,
                )
                self._event(conn, now, new_id, operation, None, "issued", who, related=cid)
                return self._card(conn, new_id, now)
        except IntegrityError:
            # The row locks leave only a racing registration of the new id to get here.
            if self.exists(new_id):
                raise CardAlreadyRegistered(card_id=new_id) from None
            raise RegistryConflict(card_id=cid) from None

    def _apply(
        self,
        conn: Connection,
        now: datetime,
        operation: str,
        row: Row[Any],
        before: str,
        after: str,
        who: _ActorText,
        *,
        related: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"status": after, "status_since": now}
        if operation == "activate":
            changes["activated_at"] = now
        self._update_card(conn, row, changes)
        self._event(conn, now, row.card_id, operation, before, after, who, related=related)
        details = {"from_status": before, "to_status": after}
        if related is not None:
            details["related_card_id"] = related
        self._journal(conn, now, operation, row.card_id, who, details)

    def _end_medical_on_older(self, conn: Connection, card: Row[Any], now: datetime, who: _ActorText) -> None:
        generations = rules.medical_ended_generations(card.generation)
        if not generations:
            return
        older = conn.execute(
            select(cards)
            .where(
                cards.c.ssn == card.ssn,
                cards.c.card_id != card.card_id,
                cards.c.generation.in_(sorted(generations)),
                cards.c.status.in_(sorted(rules.LIVE)),
                cards.c.medical_ended_at.is_(None),
            )
            .order_by(cards.c.card_id)
            .with_for_update()
        ).all()
        for row in older:
            self._update_card(conn, row, {"medical_ended_at": now, "medical_ended_by": card.card_id})
            status = rules.effective_status(_state(row), now)
            self._event(conn, now, row.card_id, "end_medical", status, status, who, related=card.card_id)
            self._journal(conn, now, "end_medical", row.card_id, who, {"related_card_id": card.card_id})

    def _insert_card(
        self,
        conn: Connection,
        now: datetime,
        card_id: str,
        card_number: str,
        ssn: str,
        generation: int,
        bank: str,
        issue: date,
        expiry: date,
        status: str,
        *,
        activated_at: datetime | None = None,
        replaces: str | None = None,
    ) -> None:
        if conn.execute(select(cards.c.card_id).where(cards.c.card_id == card_id)).first() is not None:
            raise CardAlreadyRegistered(card_id=card_id)
        conn.execute(
            cards.insert().values(
                card_id=card_id,
                card_number=card_number,
                ssn=ssn,
                generation=generation,
                bank=bank,
                issue_date=issue,
                expiry_date=expiry,
                status=status,
                status_since=now,
                activated_at=activated_at,
                replaces=replaces,
                version=1,
                registered_at=now,
            )
        )

    def _lock_holder(self, conn: Connection, ssn: str) -> None:
        if conn.execute(select(holders.c.ssn).where(holders.c.ssn == ssn).with_for_update()).first() is None:
            raise HolderNotFound(holder=mask_ssn(ssn))

    def _lock_card(self, conn: Connection, card_id: str) -> Row[Any]:
        """Lock the card's holder, then the card itself; return the card as now committed."""
        ssn = conn.execute(select(cards.c.ssn).where(cards.c.card_id == card_id)).scalar()
        if ssn is None:
            raise CardNotFound(card_id=card_id)
        self._lock_holder(conn, ssn)
        return conn.execute(select(cards).where(cards.c.card_id == card_id).with_for_update()).one()

    def _update_card(self, conn: Connection, row: Row[Any], changes: dict[str, Any]) -> None:
        done = conn.execute(
            cards.update()
            .where(cards.c.card_id == row.card_id, cards.c.version == row.version)
            .values(**changes, version=row.version + 1)
        )
        if done.rowcount != 1:
            raise RegistryConflict(card_id=row.card_id)

    def _event(
        self,
        conn: Connection,
        now: datetime,
        card_id: str,
        event: str,
        before: str | None,
        after: str,
        who: _ActorText,
        *,
        related: str | None = None,
    ) -> None:
        conn.execute(
            card_events.insert().values(
                card_id=card_id,
                at=now,
                event=event,
                from_status=before,
                to_status=after,
                operator=who.operator,
                terminal=who.terminal,
                agent=who.agent,
                related_card_id=related,
            )
        )

    def _journal(
        self,
        conn: Connection,
        now: datetime,
        operation: str,
        card_id: str | None,
        who: _ActorText,
        details: dict[str, str],
    ) -> None:
        entry = insert_begin(
            conn,
            now=now,
            operation=f"registry.{operation}",
            card_id=card_id,
            terminal=who.terminal,
            operator=who.operator,
            agent=who.agent,
            details=details,
        )
        insert_follow_up(conn, now=now, entry_id=entry, kind="complete", result="ok", national_code=0)

    def _holder(self, conn: Connection, ssn: str) -> HolderRecord:
        row = conn.execute(select(holders).where(holders.c.ssn == ssn)).first()
        if row is None:
            raise HolderNotFound(holder=mask_ssn(ssn))
        return HolderRecord(
            ssn=row.ssn,
            name=row.name,
            gender=row.gender,
            birth_date=row.birth_date,
            registered_at=row.registered_at,
        )

    def _card(self, conn: Connection, card_id: str, now: datetime) -> CardRecord:
        row = conn.execute(_CARD_SELECT.where(cards.c.card_id == card_id)).first()
        if row is None:
            raise CardNotFound(card_id=card_id)
        return self._record(row, now)

    def _record(self, row: Row[Any], now: datetime) -> CardRecord:
        m = row._mapping
        state = _state(row)
        until = rules.temp_loss_until(state)
        return CardRecord(
            card_id=m["card_id"],
            card_number=m["card_number"],
            ssn=m["ssn"],
            holder_name=m["holder_name"],
            generation=int(m["generation"]),
            bank=m["bank"],
            issue_date=m["issue_date"],
            expiry_date=m["expiry_date"],
            status=m["status"],
            effective_status=rules.effective_status(state, now),
            status_since=state.status_since,
            activated_at=m["activated_at"],
            medical_ended_at=m["medical_ended_at"],
            medical_ended_by=m["medical_ended_by"],
            replaced_by=m["replaced_by"],
            replaces=m["replaces"],
            temp_loss_until=until if until is not None and now < until else None,
            version=int(m["version"]),
            registered_at=m["registered_at"],
        )


def _new_card(card: object) -> dict[str, Any]:
    if not isinstance(card, NewCard):
        raise InvalidCardData("new_card must be a NewCard", detail_zh="新卡信息缺失")
    issue, expiry = validation.validity(card.issue_date, card.expiry_date)
    return {
        "card_id": validation.card_id(card.card_id),
        "card_number": validation.card_number(card.card_number),
        "generation": validation.generation(card.generation),
        "issue_date": issue,
        "expiry_date": expiry,
        "bank": None if card.bank is None else validation.bank(card.bank).code,
    }
