"""The tearing campaign's shared driver (issue 11, docs/reliability.md).

A :class:`TearFlow` names a writing flow: the card it starts from, the flow
itself (a function of a :class:`~terminal.session.CardSession`) and the
journal operation it records.  :func:`clean_run` runs it once without a
fault through the emulator's fault injector (``emulator.faults``), counting
its APDUs (from the flow's start: detection is not part of it) and taking
the card's persistent state after every APDU: the *boundary states*.  The
card OS commits each command atomically before it answers, so a tear before
APDU ``i`` must leave boundary state ``i-1`` and a tear after it boundary
state ``i``; :func:`tear_case` checks exactly that and then

* the flow's journal entry: *torn* when the tear hit its state-changing
  command (or came after one), else completed as *failed* on an unchanged
  card;
* a fresh session (a new reader connection with the presentation gate, as
  the CLI and the service open cards) settles every incomplete entry at
  connect: *applied* (result ok) exactly when the card shows the flow's
  final state, *not applied* (failed) when it shows the starting state;
* no money and no PIN or key try gained or lost: the state is one of the
  clean run's own states, so balance, counters and try counters are
  (``money_and_tries``);
* the card keeps working (the flow's ``probe``).

Everything is in process here (``InProcessTransport``); the PC/SC subset
(rel_tear_pcsc.py) runs the same cases through pcscd + vpcd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rel_cards import clone_image

from apdu.errors import CardRemovedError, TransportError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_ca, demo_psam_image
from card_model.purse import PurseState
from emulator.card_os import CardOS
from emulator.faults import Fault, FaultPlan, FaultyCard, InProcessTear
from emulator.psam import PsamCard
from emulator.vpcd import CardWrapper, VirtualCard
from terminal.errors import TornOperation
from terminal.journal_hook import JournalHook, JournalResult, MemoryJournal, RegistryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.presentation import PresentationGate
from terminal.registry import Actor
from terminal.session import CardSession

TearKind = Literal["tear_before", "tear_after"]
KINDS: tuple[TearKind, TearKind] = ("tear_before", "tear_after")
ACTOR = Actor(operator="op-rel-11", terminal="BJ-REL-TEAR")
READER = "In-process card"

State = dict[str, Any]
Flow = Callable[[CardSession], object]
Probe = Callable[[CardSession, str], None]


def psam_source() -> PsamKeySource:
    return PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()), reader="In-process PSAM"))


def anchors() -> list[Any]:
    return [demo_ca().certificate]


def persistent(card: CardOS) -> State:
    """What the card keeps across a power loss (the revision counter aside).

    The purse's last MAC2 / TAC depend on the card's random challenge and the
    terminal's random sequence number, so they are left out; balance,
    counters and the "last transaction" counters stay."""
    image = card.image.to_dict()
    image.pop("revision", None)
    purse = card.profile.applications.purse
    if purse is not None:
        files = image["binary_files"]
        for fid in list(files):
            if int(fid, 16) == purse.state_fid:
                state = PurseState.from_bytes(bytes.fromhex(files[fid]))
                files[fid] = {
                    "balance": state.balance,
                    "online_counter": state.online_counter,
                    "offline_counter": state.offline_counter,
                    "last_load": None if state.last_load is None else state.last_load.counter,
                    "last_purchase": None if state.last_purchase is None else state.last_purchase.counter,
                }
    return image


@dataclass(frozen=True)
class TearFlow:
    """One writing flow of the campaign.

    ``start``: a fresh card OS in the flow's starting state (called once,
    then copied for every case).  ``run``: the flow.  ``operation``: its
    journal operation.  ``probe(session, outcome)``: after the settlement,
    the card works in the state ``outcome`` (``"old"``, ``"new"`` or
    ``"partial"``).  ``partial_states``: how many boundary states besides
    the old and the new one the flow may leave (a write of several records,
    one UPDATE RECORD each: the card has no multi-command transaction).
    ``ambiguous``: the old and the new state look the same from outside (a
    PIN changed from a non-initial PIN with full tries): a torn entry may
    stay *undetermined* for a person, who settles it with the holder (the
    probe: the PIN that works) through ``sscard journal resolve``.
    """

    name: str
    operation: str
    start: Callable[[], CardOS]
    run: Flow
    probe: Probe
    partial_states: int = 0
    ambiguous: bool = False
    money: Callable[[State], int] | None = None
    extra_operations: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Recorded:
    """A flow run once without a fault: its APDUs and the card's state after each."""

    template: CardOS
    boundaries: list[State]
    ins: list[int]

    @property
    def apdus(self) -> int:
        return len(self.ins)

    @property
    def old(self) -> State:
        return self.boundaries[0]

    @property
    def new(self) -> State:
        return self.boundaries[-1]

    def changing(self) -> list[int]:
        """1-based indexes of the APDUs that changed the card's persistent state."""
        return [i for i in range(1, self.apdus + 1) if self.boundaries[i] != self.boundaries[i - 1]]

    def expected(self, kind: TearKind, index: int) -> State:
        """The only state a tear at that point may leave (the card commits each command atomically)."""
        return self.boundaries[index - 1] if kind == "tear_before" else self.boundaries[index]

    def points(self) -> list[tuple[TearKind, int]]:
        return [(kind, index) for index in range(1, self.apdus + 1) for kind in KINDS]


@dataclass(frozen=True)
class CleanRun(Recorded):
    """A :class:`TearFlow` without a fault."""

    flow: TearFlow

    def outcome_of(self, state: State) -> str:
        if state == self.old:
            return "old"
        if state == self.new:
            return "new"
        return "partial"


class Recorder(CardWrapper):
    """Takes the persistent state after every APDU while ``on``."""

    card: CardOS

    def __init__(self, card: CardOS) -> None:
        super().__init__(card)
        self.on = False
        self.states: list[State] = []
        self.ins: list[int] = []

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        if self.on:
            self.states.append(persistent(self.card))
            self.ins.append(apdu[1])
        return answer


def copy_card(template: CardOS) -> CardOS:
    return CardOS(clone_image(template.image), interface=template.interface)


def session_on(
    card: VirtualCard,
    key_source: KeySource,
    journal: JournalHook,
    *,
    gate: PresentationGate | None = None,
    connect: bool = True,
) -> tuple[CardSession, InProcessTransport]:
    """A new in-process reader holding ``card``; connected unless ``connect``
    is False (a blank card cannot be)."""
    transport = InProcessTransport(reader=READER, protocol="T0")
    transport.insert(card)
    if isinstance(card, InProcessTear):
        card.transport = transport
    session = CardSession(
        transport, key_source=key_source, journal=journal, trust_anchors=anchors(), gate=gate
    )
    if connect:
        session.connect()
    return session, transport


def record(
    template: CardOS, key_source: KeySource, run: Callable[[CardSession], object], *, connect: bool = True
) -> Recorded:
    """``run`` on a copy of ``template``, recording every APDU's INS and boundary state."""
    card = copy_card(template)
    recorder = Recorder(card)
    session, _ = session_on(recorder, key_source, MemoryJournal(), connect=connect)
    recorder.states.append(persistent(card))
    recorder.on = True
    run(session)
    recorder.on = False
    return Recorded(template, recorder.states, recorder.ins)


def clean_run(flow: TearFlow, key_source: KeySource) -> CleanRun:
    template = flow.start()
    done = record(template, key_source, flow.run)
    return CleanRun(template, done.boundaries, done.ins, flow)


@dataclass
class TearOutcome:
    """What one tear case found (for the campaign's counts)."""

    kind: TearKind
    index: int
    error: str
    entry_state: str
    card: str
    resolution: str | None


@dataclass(frozen=True)
class EntryView:
    """A journal entry as the checks see it (memory or registry journal)."""

    entry_id: int
    operation: str
    state: str
    result: str | None
    resolution: str | None


def journal_view(hook: JournalHook) -> list[EntryView]:
    """Every entry of ``hook`` in begin order."""
    if isinstance(hook, MemoryJournal):
        return [EntryView(e.entry_id, e.operation, e.state, e.result, e.resolution) for e in hook.entries]
    if isinstance(hook, RegistryJournal):
        rows = sorted(hook.journal.query(), key=lambda e: e.id)
        return [EntryView(e.id, e.operation, e.state, e.result, e.resolution) for e in rows]
    raise AssertionError(f"no view of {type(hook).__name__}")


class Bench(Protocol):
    """Where a tear case runs: in process, or through pcscd + vpcd."""

    key_source: KeySource

    def present(self, card: VirtualCard, hook: JournalHook) -> CardSession:
        """The card (wrapped by the fault injector) in a reader, first session."""
        ...

    def represent(self, hook: JournalHook, gate: PresentationGate) -> CardSession:
        """The torn card back in the reader: the next session (through ``gate``)."""
        ...

    def done(self) -> None:
        """Remove the card."""
        ...


class InProcessBench:
    """Cases in process: :class:`InProcessTransport` readers."""

    def __init__(self, key_source: KeySource) -> None:
        self.key_source = key_source
        self.wrapper: InProcessTear | None = None

    def present(self, card: VirtualCard, hook: JournalHook) -> CardSession:
        self.wrapper = InProcessTear(card)
        session, _ = session_on(self.wrapper, self.key_source, hook)
        return session

    def represent(self, hook: JournalHook, gate: PresentationGate) -> CardSession:
        assert self.wrapper is not None
        session, _ = session_on(self.wrapper, self.key_source, hook, gate=gate)
        return session

    def done(self) -> None:
        self.wrapper = None


def _flow_entries(entries: list[EntryView], flow: TearFlow) -> list[EntryView]:
    names = {flow.operation} | flow.extra_operations
    return [e for e in entries if e.operation in names]


def _open(entries: list[EntryView]) -> list[EntryView]:
    return [e for e in entries if e.state in ("open", "torn")]


def _entry(hook: JournalHook, entry_id: int) -> EntryView:
    (entry,) = [e for e in journal_view(hook) if e.entry_id == entry_id]
    return entry


def tear_case(
    run: CleanRun,
    kind: TearKind,
    index: int,
    bench: Bench | None = None,
    *,
    key_source: KeySource | None = None,
    journal: JournalHook | None = None,
) -> TearOutcome:
    """Tear the flow at APDU ``index`` (1-based) and check everything (module docstring)."""
    if bench is None:
        assert key_source is not None
        bench = InProcessBench(key_source)
    try:
        return _tear_case(run, kind, index, bench, journal if journal is not None else MemoryJournal())
    finally:
        bench.done()


def _tear_case(run: CleanRun, kind: TearKind, index: int, bench: Bench, hook: JournalHook) -> TearOutcome:
    flow = run.flow
    card = copy_card(run.template)
    plan = FaultPlan()
    known = {e.entry_id for e in journal_view(hook)}
    session = bench.present(FaultyCard(card, plan), hook)
    plan.arm(Fault.of(kind, nth=index))
    where = f"{flow.name} {kind} #{index} (INS {run.ins[index - 1]:02X})"
    error: BaseException | None = None
    try:
        flow.run(session)
    except TransportError as exc:
        error = exc
    fired = plan.fired
    assert len(fired) == 1 and fired[0].kind == kind, f"{where}: the tear did not fire"
    error_name = "none" if error is None else type(error).__name__

    # the card: exactly the boundary state of the tear point, never anything else
    expected = run.boundaries[index - 1] if kind == "tear_before" else run.boundaries[index]
    state = persistent(card)
    assert state == expected, f"{where}: the card is not in the state of that APDU boundary"
    outcome = run.outcome_of(state)
    assert outcome != "partial" or flow.partial_states, f"{where}: a mixed state"

    # the journal before the next session: torn when a write was in flight or done
    entries = _flow_entries([e for e in journal_view(hook) if e.entry_id not in known], flow)
    gate = PresentationGate(None, actor=ACTOR)
    if not entries:
        # torn while the flow read the card's state, before its journal entry began
        assert isinstance(error, CardRemovedError) and not isinstance(error, TornOperation), where
        assert outcome == "old", f"{where}: the card changed before the journal entry began"
        fresh = bench.represent(hook, gate)
        assert not _open(journal_view(hook)), f"{where}: an entry is open"
        money_and_tries(run, state, where)
        flow.probe(fresh, outcome)
        return TearOutcome(kind, index, error_name, "none", outcome, None)
    entry = entries[-1]
    if error is None:
        # the tear hit a read after the write was answered: the flow knew its outcome
        assert outcome == "new" and entry.state == "completed" and entry.result == "ok", (
            f"{where}: the flow finished despite the tear without its result"
        )
    elif isinstance(error, TornOperation):
        assert entry.state == "torn", f"{where}: TornOperation but the entry is {entry.state}"
        assert error.entry_id == entry.entry_id
    else:
        assert isinstance(error, CardRemovedError), f"{where}: {type(error).__name__}"
        assert entry.state == "completed" and entry.result == "failed", f"{where}: entry {entry.state}"
        assert outcome == "old", f"{where}: the card changed but the entry says nothing was written"
    before_state = entry.state

    # the next session settles it at connect (presentation gate)
    fresh = bench.represent(hook, gate)
    settled = fresh.presentation.settled if fresh.presentation is not None else None
    open_entries = _open(journal_view(hook))
    entry = _entry(hook, entry.entry_id)
    undetermined = settled is not None and any(
        o.entry_id == entry.entry_id and o.outcome == "undetermined" for o in settled.entries
    )
    resolution: str | None = None
    if outcome == "partial" or (undetermined and flow.ambiguous):
        assert [e.entry_id for e in open_entries] == [entry.entry_id], (
            f"{where}: undetermined entry not kept open"
        )
        assert entry.state == "torn"
        flow.probe(fresh, outcome)
        if outcome == "partial":
            # the probe repeated the write: the next presentation settles the torn entry as applied
            bench.represent(hook, gate)
            entry = _entry(hook, entry.entry_id)
            assert entry.state == "resolved" and entry.result == "ok", f"{where}: repeated write not settled"
            resolution = entry.resolution
        else:
            # the person's settlement (sscard journal resolve) after the holder's PIN worked
            result: JournalResult = "ok" if outcome == "new" else "failed"
            hook.resolve(
                entry.entry_id, resolution="holder_checked", result=result, note="PIN tried with holder"
            )
            resolution = "holder_checked"
        assert not _open(journal_view(hook)), f"{where}: an entry is still open"
        money_and_tries(run, persistent(card), where)
        return TearOutcome(kind, index, error_name, "torn", outcome, resolution)
    assert not open_entries, f"{where}: entries left open: {[e.operation for e in open_entries]}"
    if before_state == "torn":
        assert settled is not None and any(o.entry_id == entry.entry_id for o in settled.entries)
        resolution = entry.resolution
        assert entry.state == "resolved"
        assert entry.result == ("ok" if outcome == "new" else "failed"), (
            f"{where}: resolved as {entry.result} but the card shows the {outcome} state"
        )
    assert persistent(card) == state, f"{where}: settling changed the card"

    # money, PIN and key tries: only what the clean run itself does
    money_and_tries(run, state, where)
    flow.probe(fresh, outcome)
    return TearOutcome(kind, index, error_name, before_state, outcome, resolution)


def _tries(state: State) -> dict[str, int]:
    out = {"pin": int(state["pin"]["tries_left"])}
    for key in state.get("keys", []):
        out[f"key{key['kid']}"] = int(key["tries_left"])
    return out


def money_and_tries(run: CleanRun, state: State, where: str) -> None:
    """Balance and try counters equal to the old or the new ones (or a boundary's)."""
    allowed = {str(_tries(b)) for b in run.boundaries}
    assert str(_tries(state)) in allowed, f"{where}: a PIN or key try was gained or lost"
    if run.flow.money is not None:
        balances = {run.flow.money(b) for b in run.boundaries}
        assert run.flow.money(state) in balances, f"{where}: money gained or lost"
        assert balances <= {run.flow.money(run.old), run.flow.money(run.new)}


def sweep(run: CleanRun, key_source: KeySource) -> Iterator[TearOutcome]:
    for kind, index in run.points():
        yield tear_case(run, kind, index, key_source=key_source)
