"""Tearing campaign, national ``iWriteCA`` (terminal/flows/write_ca.py): the
CA's certificates and encryption key pair written to a card in
personalisation, torn before and after every APDU.

Two starting cards, both personalised up to GENERATE KEY PAIR by an instant
issuance torn before its first UPDATE BINARY: one without certificates (the
CA did not answer during issuance), one holding an earlier CA answer (the
counter writes a new one: allowed while the card is in 00).  Each tear point
on a fresh copy checks:

* the card: exactly the boundary state of the tear point; per file, EF0D
  and EF0E hold the old or the new certificate, or a half-written one that
  is no valid certificate (it does not chain), and the encryption key is
  the old or the new one;
* the journal: nothing when the tear came before the call's entry began
  (the card unchanged), else the call's entry ``card.write_certificates``
  torn;
* the next session (a repeat of the call, as the counter retries) settles
  every torn entry from the card (terminal/issuance/tear.py): each step
  ``ok`` exactly when its file / key holds the new value, the call ``ok``
  exactly when all three do; no entry is left open and the card ends in the
  clean run's final state;
* on a sample, the issuance with the same order then finishes the card,
  which passes every read, authenticity and PIN check.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from rel_tear import TearKind, copy_card, persistent, psam_source, session_on
from rel_tear_personalisation import (
    ACTOR,
    PIN,
    SSN,
    Recorded,
    StockCard,
    blank_session,
    check_finished_card,
    entry,
    order_for,
    record,
    torn_copy,
)

from apdu.errors import CardRemovedError
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from sm_crypto.errors import CryptoError
from sm_crypto.x509 import Sm2Certificate, verify_chain
from terminal.errors import TornOperation
from terminal.flows.issuance import issue_card
from terminal.flows.write_ca import OPERATION, WriteCaData, write_certificates
from terminal.issuance import IssuanceOrder, LocalTestCa
from terminal.issuance.ca import CertificateRequest, IssuedCertificates
from terminal.issuance.tear import issuance_operations
from terminal.journal_hook import MemoryJournal
from terminal.keysource import PsamKeySource
from terminal.presentation import PresentationGate
from terminal.registry import Registry, open_registry
from terminal.session import CardSession

STOCK_NUMBER = 61000
FULL_CHECK_EVERY = 11
DER_HEADER = 4
STEP = issuance_operations()["step"]
CONTENTS = ("sign_certificate", "encryption_certificate")
INS_UPDATE_BINARY = 0xD6
INS_KEY_PAIR = 0x4A


class KeepingCa(LocalTestCa):
    """The demo CA keeping the card's certificate request, to answer it again later."""

    def __init__(self) -> None:
        super().__init__()
        self.request: CertificateRequest | None = None

    def issue(self, request: CertificateRequest) -> IssuedCertificates:
        self.request = request
        return super().issue(request)


def _write_data(issued: IssuedCertificates) -> WriteCaData:
    return WriteCaData(
        issued.signature_certificate, issued.encryption_certificate, issued.encryption_key_envelope
    )


@dataclass(frozen=True)
class Scenario:
    """A starting card and the CA answer the call writes (``old``: what the card already holds)."""

    name: str
    card: CardOS
    data: WriteCaData
    old: WriteCaData | None


@dataclass(frozen=True)
class Bench:
    keys: PsamKeySource
    registry: Registry
    order: IssuanceOrder
    anchors: tuple[Sm2Certificate, ...]
    scenarios: dict[str, Scenario]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    registry, _ = open_registry(f"sqlite:///{tmp_path_factory.mktemp('write-ca-tear') / 'registry.db'}")
    keys = psam_source()
    order = order_for(card_number=f"Z{STOCK_NUMBER:08d}")
    stock = StockCard(STOCK_NUMBER)
    ca = KeepingCa()
    stock.arm("tear_before", 1, ins=0xD6)
    with pytest.raises(CardRemovedError):
        issue_card(stock.session(key_source=keys), order, registry=registry, actor=ACTOR, ca=ca)
    assert ca.request is not None and stock.os.image.life_cycle is LifeCycle.BLANK
    blank = copy_card(stock.os)
    first, second = _write_data(ca.issue(ca.request)), _write_data(ca.issue(ca.request))
    holding = copy_card(blank)
    write_certificates(
        blank_session(holding, keys, MemoryJournal()), first, anchors=ca.anchors, key_source=keys
    )
    scenarios = {
        "first": Scenario("first", blank, first, None),
        "again": Scenario("again", holding, second, first),
    }
    try:
        yield Bench(keys, registry, order, ca.anchors, scenarios)
    finally:
        registry.close()


def _der(content: bytes, size: int) -> bytes | None:
    """What the file presents as a certificate (``30 82 LL LL``), as the terminal reads it."""
    if len(content) < DER_HEADER or content[0] != 0x30 or content[1] != 0x82:
        return None
    total = DER_HEADER + int.from_bytes(content[2:4], "big")
    return bytes(content[:total]) if total <= size else None


def _valid(der: bytes, anchors: tuple[Sm2Certificate, ...]) -> bool:
    try:
        certificate = Sm2Certificate.from_der(der)
        verify_chain(certificate, [], list(anchors), certificate.not_before + dt.timedelta(seconds=1))
    except (CryptoError, ValueError):
        return False
    return True


def views(
    card: CardOS, scenario: Scenario, run: Recorded, anchors: tuple[Sm2Certificate, ...]
) -> dict[str, str]:
    """Per file (EF0D, EF0E) and for the encryption key: ``old``, ``new`` or ``partial``."""
    data, old = scenario.data, scenario.old
    out: dict[str, str] = {}
    for content in CONTENTS:
        spec = next(f for f in card.profile.files if f.kind == "binary" and f.content == content)
        new_der = (data.signature_certificate if content == CONTENTS[0] else data.encryption_certificate).der
        old_der = None
        if old is not None:
            old_der = (
                old.signature_certificate if content == CONTENTS[0] else old.encryption_certificate
            ).der
        der = _der(bytes(card.image.binary_files[spec.fid].content), spec.size)
        if der == new_der:
            out[spec.name] = "new"
        elif der == old_der:
            out[spec.name] = "old"
        else:
            assert der is not None and not _valid(der, anchors), (
                f"{spec.name}: a half-written certificate is valid"
            )
            out[spec.name] = "partial"
    key = persistent(card)["sm2"]["encrypt_private"]
    assert key in (run.old["sm2"]["encrypt_private"], run.new["sm2"]["encrypt_private"]), (
        "a third encryption key"
    )
    out["key"] = "new" if key == run.new["sm2"]["encrypt_private"] else "old"
    return out


def tear_case(
    bench: Bench, scenario: Scenario, run: Recorded, kind: TearKind, index: int, *, full: bool
) -> str:
    """One tear point (module docstring); returns the journal state the tear left (``none`` / ``torn``)."""
    where = f"iWriteCA {scenario.name} {kind} #{index} (INS {run.ins[index - 1]:02X})"
    copy = torn_copy(scenario.card, kind, index)
    journal = MemoryJournal()
    with pytest.raises(CardRemovedError) as raised:
        write_certificates(copy.session(bench.keys, journal), scenario.data, anchors=bench.anchors)
    assert copy.fired_at(kind, index), f"{where}: the tear did not fire"
    assert persistent(copy.card) == run.expected(kind, index), f"{where}: not the state of that APDU boundary"
    seen = views(copy.card, scenario, run, bench.anchors)

    calls = [e for e in journal.entries if e.operation == OPERATION]
    if not calls:
        # torn while the call probed the card, before its entry began
        assert not isinstance(raised.value, TornOperation) and not journal.entries, where
        assert persistent(copy.card) == run.old, f"{where}: the card changed before the journal entry began"
        left = "none"
    else:
        (call,) = calls
        assert call.state == "torn", f"{where}: the call's entry is {call.state} ({call.result})"
        assert isinstance(raised.value, TornOperation) and raised.value.entry_id == call.entry_id, where
        left = "torn"
    torn = [e.entry_id for e in journal.entries if e.state == "torn"]

    # the next session: the counter repeats the call
    again = write_certificates(copy.session(bench.keys, journal), scenario.data, anchors=bench.anchors)
    assert again.resolved == len(torn), f"{where}: {again.resolved} of {len(torn)} torn entries settled"
    assert journal.incomplete(again.card_id) == [], f"{where}: entries left open"
    for entry_id in torn:
        assert entry(journal, entry_id).state == "resolved", where
    for call in calls:
        settled = entry(journal, call.entry_id)
        everything = all(v == "new" for v in seen.values())
        assert settled.result == ("ok" if everything else "failed"), (
            f"{where}: call {settled.result} on {seen}"
        )
        for step in journal.entries:
            if step.operation != STEP or step.details.get("parent") != str(call.entry_id):
                continue
            target = step.details.get("file", "key")
            expected = "ok" if seen[target] == "new" else "failed"
            assert step.result == expected, f"{where}: step {step.details['step']} {step.result} on {seen}"
    assert persistent(copy.card) == run.new, f"{where}: the repeated call did not finish the write"

    if full:
        # the issuance with the same order finishes the card, which then works
        session = copy.session(bench.keys, journal)
        result = issue_card(session, bench.order, registry=bench.registry, actor=ACTOR)
        assert result.life_cycle is LifeCycle.PERSONALISED and result.steps_run == 1, where
        assert journal.incomplete(result.card_id) == [], where
        check_finished_card(copy.session(bench.keys, journal), SSN, PIN)
    return left


@pytest.mark.parametrize("name", ["first", "again"])
def test_tear_at_every_apdu_of_write_ca(bench: Bench, name: str, tear_points: Counter[str]) -> None:
    scenario = bench.scenarios[name]

    def run_call(session: CardSession) -> object:
        return write_certificates(session, scenario.data, anchors=bench.anchors)

    run = record(scenario.card, bench.keys, run_call)
    changing = run.changing()
    chunks = [i for i, ins in enumerate(run.ins, start=1) if ins == INS_UPDATE_BINARY]
    (imported,) = [i for i in changing if run.ins[i - 1] == INS_KEY_PAIR]
    # every UPDATE BINARY chunk changes the card, unless it writes what the file holds already
    assert len(chunks) >= 4 and set(changing) <= {*chunks, imported}, f"{name}: {changing}"
    assert len({str(b) for b in run.boundaries}) == len(changing) + 1
    points = run.points()
    left = Counter(
        tear_case(bench, scenario, run, kind, index, full=case % FULL_CHECK_EVERY == 0)
        for case, (kind, index) in enumerate(points)
    )
    assert left["none"] and left["torn"], left
    tear_points[f"gen3 iWriteCA ({name})"] += len(points)
    print(
        f"tear points iWriteCA {name}: {run.apdus} APDUs, {len(points)} points, {len(changing)} card-changing"
    )


def test_the_issuance_settles_a_torn_write_ca(bench: Bench) -> None:
    """The counter finishes the card with the issuance instead of repeating
    ``iWriteCA``: the issuance settles the torn call and its step from the card
    (EF0E half-written: neither applied), asks the CA again and finishes."""
    scenario = bench.scenarios["first"]
    copy = torn_copy(scenario.card, "tear_after", 4, ins=INS_UPDATE_BINARY)  # EF0E's first chunk
    journal = MemoryJournal()
    with pytest.raises(TornOperation):
        write_certificates(copy.session(bench.keys, journal), scenario.data, anchors=bench.anchors)
    session = copy.session(bench.keys, journal)
    result = issue_card(session, bench.order, registry=bench.registry, actor=ACTOR)
    settled = {(e.operation, e.outcome, e.note) for e in result.resolved}
    assert settled == {
        (OPERATION, "not_applied", "written: EF0D; not written: EF0E, encryption key"),
        (STEP, "not_applied", "EF0E holds another certificate"),
    }
    assert result.life_cycle is LifeCycle.PERSONALISED and journal.incomplete(result.card_id) == []
    check_finished_card(copy.session(bench.keys, journal), SSN, PIN)


def test_an_ordinary_session_settles_a_torn_write_ca(bench: Bench) -> None:
    """The card torn after IMPORT ENCRYPTION KEY PAIR, then finished by an
    issuance that kept another journal (another terminal): the first
    journal's torn call and step are settled at the card's next ordinary
    presentation, from the card (everything written: applied)."""
    scenario = bench.scenarios["first"]
    copy = torn_copy(scenario.card, "tear_after", 2, ins=INS_KEY_PAIR)  # 2nd INS 4A: the import
    journal = MemoryJournal()
    with pytest.raises(TornOperation):
        write_certificates(copy.session(bench.keys, journal), scenario.data, anchors=bench.anchors)
    torn = [e.entry_id for e in journal.entries if e.state == "torn"]
    other = MemoryJournal()
    result = issue_card(copy.session(bench.keys, other), bench.order, registry=bench.registry, actor=ACTOR)
    assert result.steps_run == 1 and other.incomplete(result.card_id) == []
    session, _ = session_on(copy.wrapper, bench.keys, journal, gate=PresentationGate(None, actor=ACTOR))
    assert session.presentation is not None and session.presentation.settled is not None
    settled = {(o.operation, o.outcome) for o in session.presentation.settled.entries}
    assert settled == {(OPERATION, "applied"), (STEP, "applied")}
    assert journal.incomplete(result.card_id) == []
    assert [entry(journal, i).result for i in torn] == ["ok", "ok"]
