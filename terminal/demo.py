"""The demo on the embedded default (``sscard demo``, ``scripts/demo``).

:func:`run_demo` brings up the PC/SC stack (:class:`emulator.stack.PcscStack`:
uses a running pcscd, else starts one, and stops only what it started),
issues a virtual generation-3 card and its PSAM from the deterministic demo
material (:mod:`card_model.demo`), inserts them into two free vpcd slots with
the emulator's card host (:class:`emulator.runner.CardHost`; a slot whose
reader already holds a card belongs to someone else) and walks
the flows over real PC/SC: basic and holder information, the national
``iReadCardBas`` string, card authenticity, the service password counted
down to lockout with wrong PINs, unblock, reset to the initial PIN, change,
verify, activation, card status.  Every step has the outcome ``terminal/data/demo.toml``
says it must have (the wrong PINs must fail); the first step that does not
stops the demo.  Cards, PSAM and (if started here) pcscd are removed at the
end, whatever happened.  PINs are never part of a step's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

from apdu.errors import PcscUnavailableError, SscardError
from terminal._data import load_data
from terminal.cli_commands.errors import DemoSlotUnavailable, DemoStepFailed

__all__ = ["DemoReport", "DemoStep", "run_demo", "step_specs"]

POLL = 0.01


@dataclass(frozen=True, slots=True)
class StepSpec:
    key: str
    zh: str
    en: str
    expect: str


@dataclass(frozen=True, slots=True)
class DemoStep:
    """One step as it went: its result (``to_dict()`` of the flow's result) or
    its error body, and whether that is the outcome the step must have."""

    key: str
    zh: str
    en: str
    expect: str
    ok: bool
    seconds: float
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.key,
            "title": self.zh,
            "title_en": self.en,
            "expect": self.expect,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "result": self.result,
            "error": self.error,
        }


@dataclass
class DemoReport:
    """The whole demo: its steps, the readers it used and its duration."""

    steps: list[DemoStep] = field(default_factory=list)
    seconds: float = 0.0
    card_reader: str | None = None
    psam_reader: str | None = None
    pcscd_started: bool = False
    journal_entries: int = 0
    failure: SscardError | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        from terminal.cli_commands.exits import error_body

        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "card_reader": self.card_reader,
            "psam_reader": self.psam_reader,
            "pcscd_started": self.pcscd_started,
            "journal_entries": self.journal_entries,
            "steps": [step.to_dict() for step in self.steps],
            "error": None if self.failure is None else error_body(self.failure),
        }


def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("demo")["demo"]
    return table


def step_specs() -> list[StepSpec]:
    """The demo's steps in order (terminal/data/demo.toml)."""
    return [
        StepSpec(str(r["key"]), str(r["zh"]), str(r["en"]), str(r["expect"]))
        for r in load_data("demo")["step"]
    ]


def _error_dict(exc: SscardError) -> dict[str, Any]:
    from terminal.cli_commands.exits import error_body

    return error_body(exc)


class _Runner:
    """Runs the steps in order, recording each (see :func:`run_demo`)."""

    def __init__(self, report: DemoReport, on_step: Callable[[DemoStep], None] | None) -> None:
        self.report = report
        self.on_step = on_step
        self.specs = {spec.key: spec for spec in step_specs()}

    def _record(self, spec: StepSpec, ok: bool, started: float, **outcome: Any) -> None:
        step = DemoStep(spec.key, spec.zh, spec.en, spec.expect, ok, time.monotonic() - started, **outcome)
        self.report.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def step(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        spec = self.specs[key]
        started = time.monotonic()
        try:
            result = action()
        except SscardError as exc:
            expected = spec.expect != "ok" and exc.error_id == spec.expect
            self._record(spec, expected, started, error=_error_dict(exc))
            if not expected:
                raise
            return {}
        if spec.expect != "ok":
            self._record(spec, False, started, result=result)
            raise DemoStepFailed(f"demo step {key}: succeeded, but it must fail with {spec.expect}")
        self._record(spec, True, started, result=result)
        return result


def _wait_for_card(reader: str, present: bool, timeout: float) -> None:
    from apdu.pcsc import reader_states

    deadline = time.monotonic() + timeout
    while True:
        (state,) = reader_states([reader])
        if state.present == present and (not present or state.atr):
            return
        if time.monotonic() >= deadline:
            what = "appear" if present else "leave"
            raise DemoSlotUnavailable(f"{reader}: the virtual card did not {what} within {timeout:.0f} s")
        time.sleep(POLL)


def _choose_slots(slots: dict[int, str], card_slot: int | None, psam_slot: int | None) -> tuple[int, int]:
    """Two free vpcd slots (the ones asked for, checked, or the first free ones)."""
    from apdu.pcsc import reader_states

    states = {state.name: state for state in reader_states(list(slots.values()))}
    free = [slot for slot, name in sorted(slots.items()) if not states[name].present]
    chosen: list[int] = []
    for wanted in (card_slot, psam_slot):
        if wanted is None:
            candidates = [slot for slot in free if slot not in chosen and slot not in (card_slot, psam_slot)]
            if not candidates:
                raise DemoSlotUnavailable(
                    f"no free vpcd slot: every virtual reader holds a card (slots {sorted(slots)})"
                )
            chosen.append(candidates[0])
            continue
        if wanted not in slots:
            raise DemoSlotUnavailable(f"vpcd slot {wanted} is not offered by pcscd (slots {sorted(slots)})")
        if wanted not in free or wanted in chosen:
            raise DemoSlotUnavailable(f"vpcd slot {wanted} already holds a card (someone else's)")
        chosen.append(wanted)
    return chosen[0], chosen[1]


@dataclass
class _Demo:
    """The objects the steps share."""

    stack: ExitStack
    card_slot: int | None
    psam_slot: int | None
    busy: Callable[[str], AbstractContextManager[Any]]
    slots: dict[int, str] = field(default_factory=dict)
    session: Any = None
    journal: Any = None

    def start_stack(self, report: DemoReport) -> dict[str, Any]:
        from emulator.stack import PcscStack, StackError, pcscd_running

        wanted = [slot for slot in (self.card_slot, self.psam_slot) if slot is not None]
        # our own pcscd offers 16 slots at once; a system pcscd at least 2
        minimum = max([2, *(slot + 1 for slot in wanted)]) if pcscd_running() else 16
        pcsc = PcscStack(min_slots=minimum)
        try:
            with self.busy("demo_stack"):
                pcsc.start()
        except StackError as exc:
            raise PcscUnavailableError(f"the PC/SC stack could not be brought up: {exc}") from None
        self.stack.callback(pcsc.stop)
        report.pcscd_started = pcsc.started
        self.slots = pcsc.slots
        return {"pcscd": "started" if pcsc.started else "running", "readers": len(pcsc.slots)}

    def issue(self, report: DemoReport) -> dict[str, Any]:
        from card_model.demo import demo_ca, demo_card_image, demo_holder
        from emulator.card_os import CardOS
        from emulator.runner import CardHost
        from terminal.journal_hook import MemoryJournal
        from terminal.keysource import PsamKeySource
        from terminal.session import CardSession

        card_slot, psam_slot = _choose_slots(self.slots, self.card_slot, self.psam_slot)
        card_reader, psam_reader = self.slots[card_slot], self.slots[psam_slot]
        report.card_reader, report.psam_reader = card_reader, psam_reader
        wait = float(_settings()["card_wait_seconds"])
        host = CardHost()
        # last in, first out: the cards are pulled, then their readers seen empty
        self.stack.callback(_wait_for_card, psam_reader, False, wait)
        self.stack.callback(_wait_for_card, card_reader, False, wait)
        self.stack.enter_context(host)
        with self.busy("demo_issue"):
            host.add(card_slot, CardOS(demo_card_image(3)))
            host.add(psam_slot, psam=True)
            _wait_for_card(card_reader, True, wait)
            _wait_for_card(psam_reader, True, wait)
        keys = PsamKeySource.open(psam_reader)
        self.stack.callback(keys.close)
        self.journal = MemoryJournal()
        self.session = CardSession.open(
            card_reader, key_source=keys, journal=self.journal, trust_anchors=(demo_ca().certificate,)
        )
        self.stack.callback(self.session.close)
        _holder, card_data = demo_holder("gen3")
        return {
            "card_slot": card_slot,
            "card_reader": card_reader,
            "psam_slot": psam_slot,
            "psam_reader": psam_reader,
            "card_number": str(card_data.card_number.value),
            "terminal_number": keys.terminal_number,
        }


def _pins(ssn: str) -> tuple[str, str, str]:
    """(initial, wrong, new) PINs of the demo card."""
    from terminal import flows

    settings = _settings()
    initial = flows.initial_pin_of(ssn)
    new = str(settings["new_pin"])
    wrong = next(pin for pin in settings["wrong_pins"] if pin not in (initial, new))
    return initial, str(wrong), new


def run_demo(
    *,
    card_slot: int | None = None,
    psam_slot: int | None = None,
    on_step: Callable[[DemoStep], None] | None = None,
    busy: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> DemoReport:
    """Run the demo; the report says how every step went.  A step that does
    not give its expected outcome ends the demo: the report's ``failure``
    is the error (the demo's cleanup has run by then)."""
    from terminal import flows

    report = DemoReport()
    runner = _Runner(report, on_step)
    started = time.monotonic()

    def quiet(_key: str) -> AbstractContextManager[Any]:
        return nullcontext()

    try:
        with ExitStack() as stack:
            demo = _Demo(stack, card_slot, psam_slot, busy or quiet)
            runner.step("stack", lambda: demo.start_stack(report))
            runner.step("issue", lambda: demo.issue(report))

            def s() -> Any:
                return demo.session  # opened by the "issue" step

            runner.step("read_basic", lambda: flows.read_basic(s()).to_dict())
            holder = runner.step("read_holder", lambda: flows.read_holder(s()).to_dict())
            initial, wrong, new = _pins(str(holder["ssn"]))
            runner.step("national", lambda: {"national": flows.read_card_bas(s())})
            runner.step("authenticate", lambda: flows.authenticate_card(s()).to_dict())
            runner.step("pin_status", lambda: flows.pin_status(s()).to_dict())
            for key in ("wrong_pin_1", "wrong_pin_2", "wrong_pin_3", "locked"):
                runner.step(key, lambda: flows.verify_pin(s(), wrong).to_dict())
            runner.step("unblock_pin", lambda: flows.unblock_pin(s()).to_dict())
            runner.step("reset_pin", lambda: flows.reset_pin(s()).to_dict())
            runner.step("change_pin", lambda: flows.change_pin(s(), initial, new).to_dict())
            runner.step("verify_pin", lambda: flows.verify_pin(s(), new).to_dict())
            runner.step("activate", lambda: flows.activate(s()).to_dict())
            runner.step("card_status", lambda: flows.card_status(s(), key_counters=True).to_dict())
            if demo.journal is not None:
                report.journal_entries = len(demo.journal.entries)
    except SscardError as exc:
        report.failure = exc
    report.seconds = time.monotonic() - started
    return report
