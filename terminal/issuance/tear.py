"""Resolving issuance journal entries from what the card shows.

Every personalisation step is its own journal entry (``card.issue.step``,
details ``step``, ``target`` / ``file`` / ``tag`` and a 2-byte ``check`` of
what was written).  A step interrupted by a tear (or by a crash of the
terminal) is settled from the card's state:

========================  ===================================================
step                      applied when
========================  ===================================================
``load_key``              GET DATA DF05 shows the key loaded
``write_record``          the record holds the value (its check matches)
``load_pin``              DF05 shows the PIN loaded
``generate_key_pair``     DF05 shows the signature key pair
``write_certificate``     the file holds the certificate (its check matches)
``import_encryption_key`` the card's encryption public key matches the check
``end_personalisation``   the life cycle is no longer 00 (blank)
``scrap``                 the life cycle is 04 (permanently blocked)
``iWriteCA`` (the call)   every file it names holds its certificate and the
                          encryption key matches (``check_<file>``,
                          ``check_encryption``); anything less is not applied, the
                          note names what the card holds
========================  ===================================================

The whole-issuance entries (``card.issue`` / ``card.replace``) are resumed
by the issuance flow itself, which also registers the card; a plain
:func:`terminal.flows.resolve_torn` leaves them open ("undetermined").
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Literal

from apdu.errors import CardError, KeySourceError
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from sm_crypto.sm3 import sm3
from terminal._data import load_data
from terminal.issuance.card import ENCRYPT_KEY, BlankCard, CardProgress
from terminal.journal_hook import IncompleteEntry
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = [
    "FILE_CHECK",
    "ISSUANCE_OPERATIONS",
    "KEY_CHECK",
    "Verdict",
    "issuance_operations",
    "issuance_verdict",
    "step_verdict",
    "value_check",
]

TornOutcome = Literal["applied", "not_applied", "interrupted_read", "undetermined"]
Verdict = tuple[TornOutcome, str]
CHECK_BYTES = 2
FILE_CHECK = "check_"
KEY_CHECK = "check_encryption"


@cache
def issuance_operations() -> dict[str, str]:
    """Journal operation names by kind (``issue``, ``replace``, ``step``, ``scrap``)."""
    return {str(k): str(v) for k, v in load_data("issuance")["journal"].items()}


def _all() -> frozenset[str]:
    return frozenset(issuance_operations().values())


ISSUANCE_OPERATIONS = _all()


def value_check(card_id: str, data: bytes) -> str:
    """A 2-byte check of a written value (certificate, public key) bound to the card."""
    return sm3(bytes.fromhex(card_id) + bytes(data))[:CHECK_BYTES].hex()


def _yes(condition: bool, applied: str, not_applied: str) -> Verdict:
    return ("applied", applied) if condition else ("not_applied", not_applied)


def _record(card: BlankCard, progress: CardProgress, details: Mapping[str, str]) -> Verdict:
    from terminal.flows.generic import record_check

    spec = progress.profile.file_named(details.get("file", ""))
    tag_text, check = details.get("tag", ""), details.get("check")
    if spec is None or check is None or len(tag_text) != 2:
        return "undetermined", "the entry names no record"
    tag = int(tag_text, 16)
    try:
        records = card.read_records(spec)
    except (CardError, KeySourceError) as exc:
        return "undetermined", f"the record cannot be read ({exc.error_id})"
    value = records.get(tag)
    if value is None:
        return "not_applied", f"record {tag_text} of {spec.name} is absent"
    return _yes(
        record_check(progress.card_id_hex, tag, value) == check,
        f"record {tag_text} of {spec.name} holds the written value",
        f"record {tag_text} of {spec.name} holds another value",
    )


def _certificate(card: BlankCard, progress: CardProgress, details: Mapping[str, str]) -> Verdict:
    spec = progress.profile.file_named(details.get("file", ""))
    if spec is None or "check" not in details:
        return "undetermined", "the entry names no certificate file"
    der = card.read_certificate(spec)
    if der is None:
        return "not_applied", f"{spec.name} holds no complete certificate"
    return _yes(
        value_check(progress.card_id_hex, der) == details["check"],
        f"{spec.name} holds the written certificate",
        f"{spec.name} holds another certificate",
    )


def _holds_encryption_key(card: BlankCard, progress: CardProgress, check: str | None) -> bool:
    public = card.read_public_key(ENCRYPT_KEY)
    return public is not None and value_check(progress.card_id_hex, public) == check


def _written_ca(card: BlankCard, progress: CardProgress, details: Mapping[str, str]) -> Verdict:
    """A whole ``iWriteCA`` call: both certificates and the encryption key, or not applied."""
    files = [key[len(FILE_CHECK) :] for key in details if key.startswith(FILE_CHECK) and key != KEY_CHECK]
    if not files or KEY_CHECK not in details:
        return "undetermined", "the entry names no certificate checks"
    held: list[str] = []
    missing: list[str] = []
    for name in files:
        outcome, _ = _certificate(card, progress, {"file": name, "check": details[FILE_CHECK + name]})
        if outcome == "undetermined":
            return "undetermined", f"the entry names no certificate file {name}"
        (held if outcome == "applied" else missing).append(name)
    (held if _holds_encryption_key(card, progress, details[KEY_CHECK]) else missing).append("encryption key")
    if not missing:
        return "applied", f"the card holds what the call wrote ({', '.join(held)})"
    return "not_applied", f"written: {', '.join(held) or 'nothing'}; not written: {', '.join(missing)}"


def step_verdict(card: BlankCard, progress: CardProgress, entry: IncompleteEntry) -> Verdict:
    """Applied / not applied for one interrupted issuance step (module docstring)."""
    details = entry.details
    step = details.get("step", "")
    if entry.operation == issuance_operations()["write_ca"]:
        return _written_ca(card, progress, details)
    if entry.operation == issuance_operations()["scrap"]:
        return _yes(
            progress.life_cycle is LifeCycle.PERMANENTLY_BLOCKED,
            "the card is permanently blocked",
            f"the card is still {progress.life_cycle.label}",
        )
    if step == "end_personalisation":
        return _yes(
            progress.life_cycle is not LifeCycle.BLANK,
            f"the card is {progress.life_cycle.label}",
            "the card is still blank",
        )
    if step == "load_key":
        try:
            role = KeyRole(details.get("target", ""))
        except ValueError:
            return "undetermined", "the entry names no key"
        return _yes(progress.has_key(role), f"{role.value} is loaded", f"{role.value} is not loaded")
    if step == "load_pin":
        return _yes(progress.pin_loaded, "the PIN is loaded", "the PIN is not loaded")
    if step == "generate_key_pair":
        return _yes(progress.sign_key, "the signature key pair exists", "no signature key pair")
    if step == "write_record":
        return _record(card, progress, details)
    if step == "write_certificate":
        return _certificate(card, progress, details)
    if step == "import_encryption_key":
        return _yes(
            _holds_encryption_key(card, progress, details.get("check")),
            "the card holds the encryption key pair",
            "the card does not hold this encryption key pair",
        )
    return "undetermined", f"no rule for the step {step or '?'}"


def issuance_verdict(session: CardSession, entry: IncompleteEntry, key_source: KeySource | None) -> Verdict:
    """The verdict :func:`terminal.flows.resolve_torn` gives an issuance entry
    met on a card in an ordinary session: steps from the card's state; the
    whole-issuance entry stays for the issuance flow to resume."""
    ops = issuance_operations()
    if entry.operation in (ops["issue"], ops["replace"]):
        return "undetermined", "resume the issuance with the same order to finish it (registration)"
    card = BlankCard(session, key_source)
    try:
        progress = card.probe()
        return step_verdict(card, progress, entry)
    except (CardError, KeySourceError) as exc:
        return "undetermined", f"the card's personalisation state cannot be read ({exc.error_id})"
