"""Instant issuance and replacement of a card at the counter (docs/issuance.md).

:func:`issue_card` personalises a blank card (life-cycle state 00, as the
initialisation organisation delivers it: EF05 identification records and
the transport key only) over APDUs and records it in the registry:

1. probe the card (SELECT, EF05, GET DATA DF01 / DF05) and check the order
   against what an earlier, interrupted attempt may have left on it;
2. load every card key with WRITE KEY (the write key AMK first), bodies from
   the key source (PSAM / security module): the terminal sees cryptograms only;
3. write the card facts (EF05 05-07), the holder's key items (EF06) and
   contact data (EF07) with UPDATE RECORD under the AMK;
4. load the initial service password (WRITE KEY P1 01, encrypted);
5. generation 3: GENERATE KEY PAIR on the card, READ PUBLIC KEY, a
   certificate request with the card's proof of possession to the CA
   interface, the signature and encryption certificates written with
   UPDATE BINARY, the encryption key pair imported from the CA's envelope;
6. read everything back, then END OF PERSONALISATION (00 -> 01): the card
   refuses it unless it is complete, so a card never looks finished but is not;
7. register the holder and the card (or, for a replacement, the registry's
   replacement of the old card), optionally activate on the card and in
   the registry.

Each state-changing step is its own journal entry (``card.issue.step``)
under the whole issuance's entry (``card.issue`` / ``card.replace``), and
every step is idempotent or skipped when the card shows it done.  A tear at
any APDU leaves either a blank card whose progress GET DATA DF05 tells, or
a finished card; calling :func:`issue_card` (or :func:`replace_card`) again
with the same order resolves the interrupted steps from the card's state
and resumes.  An unfinished card that holds another order's key items is
refused (:class:`~terminal.issuance.errors.IssuanceConflict`);
:func:`scrap_card` takes it out of use (APPLICATION BLOCK permanent: the
card stays identifiable as a scrapped blank card).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, Literal

from apdu.command import CommandApdu
from apdu.errors import InvalidInput, SscardError
from card_model.keyload import TARGET_KEY, TARGET_PIN
from card_model.lifecycle import LifeCycle
from card_model.profile import FileSpec
from card_model.values import Bank
from sm_crypto.errors import CryptoError
from sm_crypto.x509 import Sm2Certificate, verify_chain
from terminal._data import load_data
from terminal.errors import CardDataMismatch
from terminal.flows.results import TornEntryOutcome
from terminal.issuance.ca import CertificateAuthority, CertificateRequest, LocalTestCa, proof_message
from terminal.issuance.card import ENCRYPT_KEY, SIGN_KEY, BlankCard, CardProgress
from terminal.issuance.errors import (
    CardNotBlank,
    IssuanceConflict,
    IssuanceIncomplete,
    ReplacementHolderMismatch,
    ReplacementReasonRefused,
)
from terminal.issuance.order import IssuanceOrder
from terminal.issuance.plan import RecordWrite, key_roles, pin_block, record_writes
from terminal.issuance.tear import issuance_operations, step_verdict, value_check
from terminal.journal_hook import DetailValue, IncompleteEntry, JournalHook, JournalScope
from terminal.keysource.base import KeySource
from terminal.registry import Actor, NewCard, Registry, rules
from terminal.registry.errors import HolderNotFound, RegistryRefused, ReplacementBankMismatch
from terminal.session import CardSession

__all__ = [
    "IssuanceResult",
    "ReplacementReason",
    "ScrapResult",
    "inspect_card",
    "issue_card",
    "replace_card",
    "scrap_card",
]

ReplacementReason = Literal["lost", "damaged"]
FINISHED = (LifeCycle.PERSONALISED, LifeCycle.ACTIVE)
SIGN_CONTENT = "sign_certificate"
ENCRYPT_CONTENT = "encryption_certificate"
SCRAP_P2 = 0x01
REFUSED_EXIT = 10


@cache
def _settings() -> dict[str, Any]:
    return load_data("issuance")


@dataclass(frozen=True, slots=True)
class IssuanceResult:
    """What an issuance (or its resumption) did; ``to_dict()`` is the JSON answer."""

    operation: Literal["issue", "replace"]
    card_id: str
    card_number: str
    generation: int
    life_cycle: LifeCycle
    registry_status: str
    replaces: str | None
    resumed: bool
    steps_run: int
    steps_skipped: int
    resolved: tuple[TornEntryOutcome, ...] = ()
    certificate_serial: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "card_id": self.card_id,
            "card_number": self.card_number,
            "generation": self.generation,
            "life_cycle": self.life_cycle.label,
            "life_cycle_text": self.life_cycle.text,
            "registry_status": self.registry_status,
            "replaces": self.replaces,
            "resumed": self.resumed,
            "steps_run": self.steps_run,
            "steps_skipped": self.steps_skipped,
            "resolved": [entry.to_dict() for entry in self.resolved],
            "certificate_serial": self.certificate_serial,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class ScrapResult:
    card_id: str
    life_cycle_before: LifeCycle
    life_cycle: LifeCycle
    resolved: tuple[TornEntryOutcome, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id,
            "life_cycle_before": self.life_cycle_before.label,
            "life_cycle": self.life_cycle.label,
            "life_cycle_text": self.life_cycle.text,
            "resolved": [entry.to_dict() for entry in self.resolved],
        }


# -- public flows -------------------------------------------------------------------------


def inspect_card(session: CardSession, *, key_source: KeySource | None = None) -> CardProgress:
    """The personalisation state of the card in ``session`` (reads only)."""
    card = BlankCard(session, key_source)
    card.connect()
    with session.transport.transaction():
        return card.probe()


def issue_card(
    session: CardSession,
    order: IssuanceOrder,
    *,
    registry: Registry,
    actor: Actor,
    ca: CertificateAuthority | None = None,
    key_source: KeySource | None = None,
    activate: bool = False,
) -> IssuanceResult:
    """Issue (or resume issuing) ``order`` on the blank card in ``session``; see the module docstring."""
    return _Issuance(session, order, registry, actor, ca, key_source, activate, None).run()


def replace_card(
    session: CardSession,
    order: IssuanceOrder,
    old_card_id: str,
    *,
    registry: Registry,
    actor: Actor,
    reason: ReplacementReason | None = None,
    ca: CertificateAuthority | None = None,
    key_source: KeySource | None = None,
    activate: bool = False,
) -> IssuanceResult:
    """A replacement for the holder's old card (formally reported lost, or
    damaged and in hand): the same generation rules as the registry ("new
    for new"), the old card ``replaced`` in the registry (so it is refused
    at every later presentation)."""
    replacement = _Replacement(old_card_id.strip().upper(), reason, registry, order)
    return _Issuance(session, order, registry, actor, ca, key_source, activate, replacement).run()


def scrap_card(session: CardSession, *, key_source: KeySource | None = None) -> ScrapResult:
    """Take an unfinished (blank) card out of use: APPLICATION BLOCK permanent
    (00 -> 04) with the write key's MAC; open issuance entries are closed.  A
    card already scrapped (04 and incomplete) only has its entries settled."""
    card = BlankCard(session, key_source)
    card.connect()
    hook = session.journal
    with session.transport.transaction():
        progress = card.probe()
        card_id = progress.card_id_hex
        scrapped = progress.life_cycle is LifeCycle.PERMANENTLY_BLOCKED and not progress.complete
        if progress.life_cycle is not LifeCycle.BLANK and not scrapped:
            raise CardNotBlank(f"the card is {progress.life_cycle.label}; only a blank card is scrapped")
        entries = hook.incomplete(card_id)
        resolved = _resolve_steps(hook, card, progress, entries)
        if not scrapped:
            operation = issuance_operations()["scrap"]
            with JournalScope(hook, operation, card_id, {"step": "scrap"}) as scope:
                command = card.secure(CommandApdu(0x80, 0x1E, 0x00, SCRAP_P2), card.write_role)
                with scope.write("APPLICATION BLOCK"):
                    card.send(command)
                scope.add(life_cycle=LifeCycle.PERMANENTLY_BLOCKED.label)
        _close_issuances(hook, entries)
    return ScrapResult(card_id, progress.life_cycle, LifeCycle.PERMANENTLY_BLOCKED, resolved)


def _close_issuances(hook: JournalHook, entries: Sequence[IncompleteEntry]) -> None:
    ops = issuance_operations()
    for entry in entries:
        if entry.operation in (ops["issue"], ops["replace"]):
            hook.resolve(entry.entry_id, resolution="scrapped", result="failed", note="the card was scrapped")


# -- machinery --------------------------------------------------------------------------------


def _resolve_steps(
    hook: JournalHook, card: BlankCard, progress: CardProgress, entries: Sequence[IncompleteEntry]
) -> tuple[TornEntryOutcome, ...]:
    """Settle interrupted step entries from the card's state."""
    ops = issuance_operations()
    out: list[TornEntryOutcome] = []
    for entry in entries:
        if entry.operation not in (ops["step"], ops["scrap"], ops["write_ca"]):
            continue
        outcome, note = step_verdict(card, progress, entry)
        resolved = outcome in ("applied", "not_applied")
        result: Literal["ok", "failed"] | None = None
        if resolved:
            result = "ok" if outcome == "applied" else "failed"
            hook.resolve(entry.entry_id, resolution=f"card_state_{outcome}", result=result, note=note)
        out.append(TornEntryOutcome(entry.entry_id, entry.operation, outcome, result, note, resolved))
    return tuple(out)


@dataclass(slots=True)
class _Replacement:
    """The registry side of a replacement: checks before the card is touched."""

    old_card_id: str
    reason: ReplacementReason | None
    registry: Registry
    order: IssuanceOrder
    checked_reason: str = field(default="")

    def check(self, generation: int, new_card_id: str) -> None:
        old = self.registry.card(self.old_card_id)
        if old.ssn != self.order.holder.ssn.value:
            raise ReplacementHolderMismatch()
        if Bank.resolve(old.bank).code != self.order.bank.code:
            raise ReplacementBankMismatch(bank=old.bank)
        rules.check_replacement_generation(old.generation, generation)
        if old.replaced_by is not None and old.replaced_by == new_card_id:
            self.checked_reason = self.reason or "resumed"
            return
        state = rules.CardState(
            card_id=old.card_id,
            status=old.status,
            status_since=old.status_since,
            activated_at=old.activated_at,
            medical_ended_at=old.medical_ended_at,
        )
        status = old.effective_status
        rules.after_replace(state, status)
        allowed: Mapping[str, Sequence[str]] = _settings()["replacement"]
        reason = self.reason or ("lost" if status in allowed["lost"] else "damaged")
        if reason not in allowed or status not in allowed[reason]:
            raise ReplacementReasonRefused(f"old card {status}, reason {reason}")
        self.checked_reason = reason


class _Issuance:
    def __init__(
        self,
        session: CardSession,
        order: IssuanceOrder,
        registry: Registry,
        actor: Actor,
        ca: CertificateAuthority | None,
        key_source: KeySource | None,
        activate: bool,
        replacement: _Replacement | None,
    ) -> None:
        self.session = session
        self.order = order
        self.registry = registry
        self.actor = actor
        self.ca: CertificateAuthority = ca if ca is not None else LocalTestCa()
        self.key_source = key_source
        self.activate = activate
        self.replacement = replacement
        self.hook = session.journal
        ops = issuance_operations()
        self.operation = ops["replace"] if replacement is not None else ops["issue"]
        self.step_operation = ops["step"]
        self.card = BlankCard(session, key_source)
        self.card_id = ""
        self.parent: int | None = None
        self.resumed = False
        self.steps_run = 0
        self.steps_skipped = 0
        self.resolved: tuple[TornEntryOutcome, ...] = ()
        self.certificate_serial: str | None = None
        self.writes: tuple[RecordWrite, ...] = ()

    # -- the run --------------------------------------------------------------------------

    def run(self) -> IssuanceResult:
        started = time.monotonic()
        self.registry.authorize("replace" if self.replacement is not None else "register_card", self.actor)
        self.card.connect()
        with self.session.transport.transaction():
            progress = self.card.probe()
            self.card_id = progress.card_id_hex
            try:
                self._prepare(progress)
            except SscardError as exc:
                self._journal_refusal(exc)
                raise
            if progress.life_cycle is LifeCycle.BLANK:
                self._personalise(progress)
        registry_status = self._register(progress)
        self.session.connect()
        life_cycle = self.session.life_cycle()
        if self.activate:
            life_cycle, registry_status = self._activate(life_cycle, registry_status)
        self.hook.complete(
            self.parent,
            result="ok",
            details={
                "life_cycle": life_cycle.label,
                "registry_status": registry_status,
                "steps": self.steps_run,
            },
        )
        return IssuanceResult(
            operation="replace" if self.replacement is not None else "issue",
            card_id=self.card_id,
            card_number=self.order.card_number.value,
            generation=progress.profile.generation,
            life_cycle=life_cycle,
            registry_status=registry_status,
            replaces=None if self.replacement is None else self.replacement.old_card_id,
            resumed=self.resumed,
            steps_run=self.steps_run,
            steps_skipped=self.steps_skipped,
            resolved=self.resolved,
            certificate_serial=self.certificate_serial,
            seconds=time.monotonic() - started,
        )

    def _prepare(self, progress: CardProgress) -> None:
        """Every check before the first state-changing APDU; opens the issuance entry."""
        profile = progress.profile
        card_data = self.order.card_data(progress.card_id)
        self.writes = record_writes(profile, self.order.holder, card_data)
        if self.replacement is not None:
            self.replacement.check(profile.generation, self.card_id)
        entries = self.hook.incomplete(self.card_id)
        if progress.life_cycle is LifeCycle.BLANK:
            self._check_key_items()
        elif progress.life_cycle in FINISHED:
            self._check_finished(progress, entries)
        else:
            raise CardNotBlank(f"the card is {progress.life_cycle.label}")
        self.resolved = _resolve_steps(self.hook, self.card, progress, entries)
        self._open_parent(entries, progress)

    def _journal_refusal(self, exc: SscardError) -> None:
        """A refusal before the first write is journaled as a closed entry of its own."""
        if self.parent is not None:
            return
        refused = isinstance(exc, (CardDataMismatch, InvalidInput, RegistryRefused)) or (
            getattr(exc, "exit_code", None) == REFUSED_EXIT
        )
        entry = self.hook.begin(self.operation, card_id=self.card_id or None, details=self._details())
        self.hook.complete(
            entry, result="refused" if refused else "failed", national_code=exc.national_code, sw=exc.sw
        )

    def _details(self) -> dict[str, DetailValue]:
        details: dict[str, DetailValue] = {
            "order": self.order.check(),
            "card_number": self.order.card_number.value,
            "bank": self.order.bank.code,
            "ssn": _mask(self.order.holder.ssn.value),
        }
        if self.replacement is not None:
            details["replaces"] = self.replacement.old_card_id
            if self.replacement.checked_reason:
                details["reason"] = self.replacement.checked_reason
        return details

    def _open_parent(self, entries: Sequence[IncompleteEntry], progress: CardProgress) -> None:
        ops = issuance_operations()
        check = self.order.check()
        for entry in entries:
            if entry.operation not in (ops["issue"], ops["replace"]):
                continue
            if (
                self.parent is None
                and entry.operation == self.operation
                and entry.details.get("order") == check
            ):
                self.parent, self.resumed = entry.entry_id, True
                continue
            self.hook.resolve(
                entry.entry_id,
                resolution="superseded",
                result="failed",
                note="another issuance order took over the card",
            )
        if self.parent is None:
            details = self._details()
            details.update(profile=progress.profile.name, life_cycle_before=progress.life_cycle.label)
            self.parent = self.hook.begin(self.operation, card_id=self.card_id, details=details)

    # -- consistency with what the card holds ------------------------------------------------

    def _existing(self) -> dict[int, Mapping[int, bytes]]:
        """Current records of every file the order writes (those read under RK once RK is loaded)."""
        out: dict[int, Mapping[int, bytes]] = {}
        for write in self.writes:
            if write.file.fid not in out:
                out[write.file.fid] = self.card.read_records(write.file)
        return out

    def _check_key_items(self) -> dict[int, Mapping[int, bytes]]:
        """Refuse a card whose key-item records (files never updated after
        issuance) hold values this order does not write; returns what the card holds."""
        existing = self._existing()
        wanted: dict[int, dict[int, bytes]] = {}
        for write in self.writes:
            wanted.setdefault(write.file.fid, {})[write.tag] = write.stored
        profile = self.card.profile
        initialised = profile.personalisation.initialised
        for spec in profile.files:
            if spec.kind != "records" or spec.update.kind != "never" or spec.fid not in existing:
                continue
            for tag, value in existing[spec.fid].items():
                record = spec.record(tag)
                if record is not None and record.element in initialised:
                    continue
                if wanted.get(spec.fid, {}).get(tag) != value:
                    raise IssuanceConflict(f"{spec.name} record {tag:02X} differs from the order")
        return existing

    def _check_finished(self, progress: CardProgress, entries: Sequence[IncompleteEntry]) -> None:
        """A personalised card is resumed only when it holds this order and its
        issuance entry is still open (registration or activation unfinished)."""
        if progress.card_number != self.order.card_number.value:
            raise CardNotBlank(f"the card is {progress.life_cycle.label} with another card number")
        self._check_key_items()
        check = self.order.check()
        open_parent = any(e.operation == self.operation and e.details.get("order") == check for e in entries)
        if not open_parent and self.registry.exists(self.card_id):
            raise CardNotBlank(f"the card is {progress.life_cycle.label} and registered")

    # -- personalisation ------------------------------------------------------------------------

    def _step(
        self, name: str, details: Mapping[str, DetailValue], action: Callable[[JournalScope], bytes]
    ) -> bytes:
        full: dict[str, DetailValue] = {"step": name, "parent": self.parent or 0, **details}
        with JournalScope(self.hook, self.step_operation, self.card_id, full) as scope:
            data = action(scope)
        self.steps_run += 1
        return data

    def _send_step(
        self, name: str, details: Mapping[str, DetailValue], what: str, build: Callable[[], CommandApdu]
    ) -> bytes:
        def action(scope: JournalScope) -> bytes:
            command = build()
            with scope.write(what):
                return self.card.send(command).data

        return self._step(name, details, action)

    def _personalise(self, progress: CardProgress) -> None:
        card = self.card
        profile = progress.profile
        for role in key_roles(profile):
            if progress.has_key(role):
                self.steps_skipped += 1
                continue
            spec = profile.key_for_role(role)
            if spec is None:
                raise IssuanceIncomplete(f"the {profile.name} profile has no {role.value} key")
            self._send_step(
                "load_key",
                {"target": role.value},
                f"WRITE KEY {role.value}",
                partial(card.write_key_command, TARGET_KEY, spec.kid),
            )
        progress = card.probe()
        existing = self._check_key_items()
        for write in self.writes:
            if existing.get(write.file.fid, {}).get(write.tag) == write.stored:
                self.steps_skipped += 1
                continue
            self._send_step(
                "write_record",
                {"file": write.file.name, "tag": f"{write.tag:02X}", "check": write.check(self.card_id)},
                f"UPDATE RECORD {write.file.name} {write.tag:02X}",
                partial(card.update_record_command, write.file, write.tag, write.stored),
            )
        if progress.pin_loaded:
            self.steps_skipped += 1
        else:
            block = pin_block(profile, self.order.holder)
            self._send_step(
                "load_pin",
                {"target": f"{profile.pin.pin_id:02X}"},
                "WRITE KEY PIN",
                lambda: card.write_key_command(TARGET_PIN, profile.pin.pin_id, block),
            )
        if profile.sm2:
            self._sm2(card.probe())
        self._verify()
        self._send_step("end_personalisation", {}, "END OF PERSONALISATION", card.end_command)

    def _sm2(self, progress: CardProgress) -> None:
        card = self.card
        public = card.read_public_key(SIGN_KEY) if progress.sign_key else None
        if public is None:
            public = self._send_step("generate_key_pair", {}, "GENERATE KEY PAIR", card.generate_command)
        else:
            self.steps_skipped += 1
        if self._certificates(public) is not None:
            self.steps_skipped += 3
            return
        message = proof_message(self.card_id, self.order.card_number.value, public)
        request = CertificateRequest(
            card_id=self.card_id,
            card_number=self.order.card_number.value,
            issuer_name=progress.profile.issuer_name,
            not_before=self.order.issue_date.value,
            not_after=self.order.expiry_date.value,
            public_key=public,
            proof=card.sign(message),
        )
        issued = self.ca.issue(request)
        for content, certificate in (
            (SIGN_CONTENT, issued.signature_certificate),
            (ENCRYPT_CONTENT, issued.encryption_certificate),
        ):
            self._write_certificate(content, certificate)
        self._send_step(
            "import_encryption_key",
            {"check": value_check(self.card_id, issued.encryption_certificate.public_key.to_bytes())},
            "IMPORT ENCRYPTION KEY PAIR",
            lambda: card.import_command(issued.encryption_key_envelope),
        )
        if self._certificates(public) is None:
            raise IssuanceIncomplete("the certificates read back do not match the card's keys")

    def _binary_spec(self, content: str) -> FileSpec:
        spec = next((f for f in self.card.profile.files if f.kind == "binary" and f.content == content), None)
        if spec is None:
            raise IssuanceIncomplete(f"the {self.card.profile.name} profile has no {content} file")
        return spec

    def _write_certificate(self, content: str, certificate: Sm2Certificate) -> None:
        spec = self._binary_spec(content)
        der = certificate.der
        if len(der) > spec.size:
            raise IssuanceIncomplete(f"the certificate does not fit {spec.name}")

        def action(scope: JournalScope) -> bytes:
            for offset, chunk in self.card.binary_chunks(spec, der):
                command = self.card.update_binary_command(spec, offset, chunk)
                with scope.write(f"UPDATE BINARY {spec.name} @{offset}"):
                    self.card.send(command)
            return b""

        self._step("write_certificate", {"file": spec.name, "check": value_check(self.card_id, der)}, action)

    def _certificates(self, public: bytes) -> tuple[Sm2Certificate, Sm2Certificate] | None:
        """Both certificates on the card, valid for its keys and this card; None otherwise."""
        encrypt_public = self.card.read_public_key(ENCRYPT_KEY)
        if encrypt_public is None:
            return None
        found: list[Sm2Certificate] = []
        for content, key in ((SIGN_CONTENT, public), (ENCRYPT_CONTENT, encrypt_public)):
            der = self.card.read_certificate(self._binary_spec(content))
            if der is None:
                return None
            try:
                certificate = Sm2Certificate.from_der(der)
                if certificate.public_key.to_bytes() != key:
                    return None
                at = certificate.not_before + _dt.timedelta(seconds=1)
                verify_chain(certificate, [], list(self.ca.anchors), at)
            except CryptoError:
                return None
            if not _names_card(certificate, self.card_id, self.order.card_number.value):
                return None
            found.append(certificate)
        self.certificate_serial = f"{found[0].serial_number:X}"
        return found[0], found[1]

    def _verify(self) -> None:
        """Read back before END OF PERSONALISATION: progress complete, records as written."""
        progress = self.card.probe()
        missing = [role.value for role in key_roles(progress.profile) if not progress.has_key(role)]
        if missing or not progress.pin_loaded or not progress.records_complete:
            raise IssuanceIncomplete(
                f"keys {missing or 'ok'}, PIN {progress.pin_loaded}, records {progress.records_complete}"
            )
        existing = self._check_key_items()
        for write in self.writes:
            if existing.get(write.file.fid, {}).get(write.tag) != write.stored:
                raise IssuanceIncomplete(f"{write.file.name} record {write.tag:02X} does not read back")

    # -- registry and activation -------------------------------------------------------------------

    def _register(self, progress: CardProgress) -> str:
        holder = self.order.holder
        ssn = holder.ssn.value
        try:
            self.registry.holder(ssn)
        except HolderNotFound:
            self.registry.register_holder(
                ssn,
                holder.name.value,
                gender=holder.gender.code,
                birth_date=holder.birth_date.value,
                actor=self.actor,
            )
        generation = progress.profile.generation
        if self.replacement is not None:
            old = self.registry.card(self.replacement.old_card_id)
            if old.replaced_by != self.card_id:
                new = NewCard(
                    self.card_id,
                    self.order.card_number.value,
                    generation,
                    self.order.issue_date.value,
                    self.order.expiry_date.value,
                    self.order.bank.code,
                )
                self.registry.replace(self.replacement.old_card_id, new, self.actor)
        elif not self.registry.exists(self.card_id):
            self.registry.register_card(
                self.card_id,
                self.order.card_number.value,
                ssn,
                generation,
                self.order.bank.code,
                self.order.issue_date.value,
                self.order.expiry_date.value,
                actor=self.actor,
            )
        record = self.registry.card(self.card_id)
        if record.ssn != ssn or record.card_number != self.order.card_number.value:
            raise CardNotBlank("the registry holds this card for another holder or card number")
        return record.effective_status

    def _activate(self, life_cycle: LifeCycle, registry_status: str) -> tuple[LifeCycle, str]:
        from terminal import flows

        if life_cycle is LifeCycle.PERSONALISED:
            life_cycle = flows.activate(self.session, key_source=self.key_source).after or LifeCycle.ACTIVE
        if registry_status == "issued":
            registry_status = self.registry.activate(self.card_id, self.actor).effective_status
        return life_cycle, registry_status


def _names_card(certificate: Sm2Certificate, card_id: str, card_number: str) -> bool:
    from cryptography.x509.oid import NameOID

    serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (
        bool(serial)
        and str(serial[0].value).upper() == card_id
        and bool(common)
        and str(common[0].value) == card_number
    )


def _mask(ssn: str) -> str:
    return ssn[:6] + "*" * (len(ssn) - 7) + ssn[-1:]
