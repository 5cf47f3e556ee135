"""Terminal flows over PC/SC: latency, and APDUs per flow against the card layout's minimum.

Our card OS (contact) sits in one vpcd slot and the demo PSAM in another;
the terminal keeps one ``PsamKeySource`` open (as a counter does) and each
flow is a whole card session as the CLI runs it: ``CardSession.open``
(SCardConnect, ATR, SELECT SSSE, EF05), the flow of ``terminal.flows``,
``close`` (disconnect; the card is reset when the flow sent a command that
changes its state, ``dispose="reset_if_changed"``).  Before every call a fresh card image is
put in the slot, untimed, so state-changing flows (PIN change/reset/unblock,
activation, wallet load/purchase, issuance) always start from the same card
(:mod:`terminal.bench.flow_cases`: which card each flow starts from;
issuance starts from a blank stock card, without detection, and writes
into a fresh registry).

Anchor: ``flows.session``, a bare card session (open + detect + close, no
flow) timed in the same rounds; each flow's ratio says how many bare
sessions it costs.  APDUs are counted at the virtual cards (``VpcdLink``)
during one extra call of each flow, card and PSAM separately, and compared
with ``data/flows.toml``'s minimum (``flows.<name>.apdus`` over
``flows.<name>.apdus_min``).  The same flows also run in process
(``InProcessTransport`` to the same card OS and PSAM,
``flows.<name>.in_process``) to show what PC/SC adds to the terminal's and
the card's own work.  The journal hook is the default null hook: a registry
journal adds the ``scale`` section's journal entry cost.  Slow flows
(issuance) run fewer calls per round (``weights`` in ``data/plan.toml``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from math import ceil
from typing import Any

from apdu.inprocess import InProcessTransport
from apdu.pcsc import PcscTransport
from card_model.demo import demo_ca, demo_card_image, demo_holder, demo_psam_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from emulator.vpcd import VpcdLink
from terminal.bench._data import load_data
from terminal.bench.context import BenchContext
from terminal.bench.errors import BenchError
from terminal.bench.flow_cases import FlowCase, IssuanceRegistry, flow_cases
from terminal.bench.report import Figure, Ratio, SectionResult, latency_figure
from terminal.bench.slots import connect_when_present, inserted
from terminal.bench.timing import Subject, measure_interleaved
from terminal.keysource.psam import PsamKeySource
from terminal.session import CardSession

__all__ = ["minimum_apdus", "run"]

SECTION = "flows"
APDU_CHUNK = 256


def _der_length(data: bytes) -> int:
    """Total length of the DER element at the start of ``data``."""
    if len(data) < 2:
        raise BenchError("certificate file too short")
    first = data[1]
    if first < 0x80:
        return 2 + first
    size = first & 0x7F
    if size == 0 or size > 4 or len(data) < 2 + size:
        raise BenchError("certificate file does not start with a definite DER length")
    return 2 + size + int.from_bytes(data[2 : 2 + size], "big")


def _item(entry: str | dict[str, Any]) -> tuple[int, str]:
    """A minimum entry: one APDU (a string) or ``{apdus = N, what = "..."}``."""
    if isinstance(entry, str):
        return 1, entry
    count = int(entry["apdus"])
    return count, f"{entry['what']} ({count} APDUs)"


def minimum_apdus(name: str, image_files: dict[int, bytes]) -> tuple[int, int, list[str]]:
    """``(card, psam, commands)``: the minimum of ``data/flows.toml`` for ``name``."""
    row = load_data("flows")["flows"][name]
    card_items = [_item(entry) for entry in row["card"]]
    psam_items = [_item(entry) for entry in row["psam"]]
    commands = [f"card: {c}" for _, c in card_items] + [f"psam: {c}" for _, c in psam_items]
    card = sum(n for n, _ in card_items)
    certificate = row.get("certificate_reads")
    if certificate:
        fid = int(str(certificate).removeprefix("EF"), 16) | 0xEF00
        length = _der_length(image_files[fid])
        reads = ceil(length / APDU_CHUNK)
        card += reads
        commands.append(
            f"card: READ BINARY {certificate} x{reads} ({length}-byte certificate, 256 bytes per APDU)"
        )
    return card, sum(n for n, _ in psam_items), commands


@dataclass
class _Rig:
    """The card and PSAM in their slots, the open PSAM key source, the trust anchor."""

    card_link: VpcdLink
    reader: str
    psam: PsamKeySource
    anchors: tuple[Any, ...]

    def fresh_card(self, case: FlowCase) -> None:
        if case.before is not None:
            case.before()
        self.card_link.card = CardOS(case.image(), interface="contact")

    def session(self, detect: bool = True) -> CardSession:
        if detect:
            return CardSession.open(self.reader, key_source=self.psam, trust_anchors=self.anchors)
        transport = PcscTransport(self.reader, dispose="reset_if_changed")
        return CardSession(transport, key_source=self.psam, trust_anchors=self.anchors)


@dataclass
class _InProcessRig:
    """The same card OS and PSAM called directly (``InProcessTransport``): no PC/SC."""

    psam: PsamKeySource
    anchors: tuple[Any, ...]
    transport: InProcessTransport

    def fresh_card(self, case: FlowCase) -> None:
        if case.before is not None:
            case.before()
        self.transport = InProcessTransport(CardOS(case.image(), interface="contact"))

    def session(self, detect: bool = True) -> CardSession:
        session = CardSession(self.transport, key_source=self.psam, trust_anchors=self.anchors)
        if detect:
            session.connect()
        return session


def _session_call(rig: _Rig | _InProcessRig, case: FlowCase | None) -> Callable[[], None]:
    def call() -> None:
        session = rig.session(case.detect if case is not None else True)
        try:
            if case is not None:
                case.run(session)
        finally:
            if session.transport.connected:
                session.close()

    return call


def _count(rig: _Rig, psam_link: VpcdLink, case: FlowCase) -> tuple[int, int]:
    rig.fresh_card(case)
    card_before, psam_before = rig.card_link.apdu_count, psam_link.apdu_count
    _session_call(rig, case)()
    return rig.card_link.apdu_count - card_before, psam_link.apdu_count - psam_before


def _weight(case: FlowCase, settings: dict[str, Any]) -> float:
    return float(settings.get("weights", {}).get(case.name, 1.0))


def run(ctx: BenchContext, result: SectionResult) -> None:
    plan = ctx.plan(SECTION)
    settings = ctx.settings(SECTION)
    stack = ctx.stack()
    holder, _card = demo_holder("gen3")
    image = demo_card_image()
    files = {fid: bytes(f.content) for fid, f in image.binary_files.items()}
    with ctx.pool().take(2, "the flows") as slots, ExitStack() as held:
        registries = IssuanceRegistry()
        held.callback(registries.close)
        measured = flow_cases(holder.ssn.initial_pin, registries)
        card_slot, psam_slot = slots
        card_link = held.enter_context(
            inserted(
                CardOS(demo_card_image(life_cycle=LifeCycle.ACTIVE), interface="contact"), card_slot, stack
            )
        )
        psam_link = held.enter_context(inserted(PsamCard(demo_psam_image()), psam_slot, stack))
        psam_reader = stack.reader_for_slot(psam_slot)
        connect_when_present(psam_reader).disconnect()
        connect_when_present(stack.reader_for_slot(card_slot)).disconnect()
        psam = PsamKeySource.open(psam_reader)
        held.callback(psam.close)
        anchors = (demo_ca().certificate,)
        rig = _Rig(card_link, stack.reader_for_slot(card_slot), psam, anchors)
        local = _InProcessRig(
            PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()))), anchors, InProcessTransport()
        )
        held.callback(local.psam.close)
        counts = {case.name: _count(rig, psam_link, case) for case in measured}
        bare = measured[0]  # the bare session starts from read_basic's card (the active demo card)
        subjects = [Subject("session", _session_call(rig, None), prepare=partial(rig.fresh_card, bare))]
        for case in measured:
            weight = _weight(case, settings)
            subjects.append(
                Subject(
                    case.name, _session_call(rig, case), weight=weight, prepare=partial(rig.fresh_card, case)
                )
            )
            subjects.append(
                Subject(
                    f"{case.name}.in_process",
                    _session_call(local, case),
                    weight=weight,
                    prepare=partial(local.fresh_card, case),
                )
            )
        ctx.log(f"flows: {', '.join(c.name for c in measured)} interleaved with a bare session")
        samples = measure_interleaved(subjects, plan)
        result.notes.append(
            f"slots {slots} (card, PSAM); each call is a whole card session; card images in memory "
            "(no fsync per state change); null journal hook; issuance into a fresh SQLite registry "
            "per call (opened untimed), its certificates from the demo CA in process"
        )

    session_fig = result.add(
        latency_figure(
            "flows.session",
            SECTION,
            "bare card session: connect, detect (SELECT + EF05), close",
            samples["session"],
        )
    )
    for flow in measured:
        card_count, psam_count = counts[flow.name]
        min_card, min_psam, commands = minimum_apdus(flow.name, files)
        over_pcsc = result.add(
            latency_figure(
                f"flows.{flow.name}",
                SECTION,
                flow.label,
                samples[flow.name],
                anchor=session_fig,
                meaning="times a bare card session",
                details={"apdus_card": card_count, "apdus_psam": psam_count},
            )
        )
        in_process = latency_figure(
            f"flows.{flow.name}.in_process",
            SECTION,
            f"{flow.label}, in process (no PC/SC)",
            samples[f"{flow.name}.in_process"],
        )
        in_process.anchor = over_pcsc.id
        in_process.ratio = Ratio(
            over_pcsc.id, over_pcsc.value, in_process.id, in_process.value, "PC/SC time over in-process time"
        )
        result.add(in_process)
        minimum = result.add(
            Figure(
                id=f"flows.{flow.name}.apdus_min",
                section=SECTION,
                label=f"{flow.label}: fewest APDUs the card layout allows",
                unit="apdus",
                value=float(min_card + min_psam),
                details={"card": min_card, "psam": min_psam, "commands": commands},
            )
        )
        actual = Figure(
            id=f"flows.{flow.name}.apdus",
            section=SECTION,
            label=f"{flow.label}: APDUs sent",
            unit="apdus",
            value=float(card_count + psam_count),
            details={"card": card_count, "psam": psam_count},
        )
        actual.anchor = minimum.id
        actual.ratio = Ratio(actual.id, actual.value, minimum.id, minimum.value, "times the minimum")
        result.add(actual)
