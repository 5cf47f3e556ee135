"""Terminal flows over PC/SC: latency, and APDUs per flow against the card layout's minimum.

Our card OS (demo generation-3 image, contact) sits in one vpcd slot and the
demo PSAM in another; the terminal keeps one ``PsamKeySource`` open (as a
counter does) and each flow is a whole card session as the CLI runs it:
``CardSession.open`` (SCardConnect, ATR, SELECT SSSE, EF05), the flow of
``terminal.flows``, ``close`` (disconnect with reset).  Before every call a
fresh card image is put in the slot, untimed, so state-changing flows
(PIN change/reset/unblock, activation) always start from the same card.

Anchor: ``flows.session``, a bare card session (open + detect + close, no
flow) timed in the same rounds; each flow's ratio says how many bare
sessions it costs.  APDUs are counted at the virtual cards (``VpcdLink``)
during one extra call of each flow, card and PSAM separately, and compared
with ``data/flows.toml``'s minimum (``flows.<name>.apdus`` over
``flows.<name>.apdus_min``).  The same flows also run in process
(``InProcessTransport`` to the same card OS and PSAM, ``flows.<name>.in_process``)
to show what PC/SC adds to the terminal's and the card's own work.  The journal hook is the default null hook:
a registry journal adds the ``scale`` section's journal entry cost.
Issuance and wallet load are not measured: their terminal flows do not
exist yet.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from math import ceil
from typing import Any

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_ca, demo_card_image, demo_holder, demo_psam_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal import flows
from terminal.bench._data import load_data
from terminal.bench.context import BenchContext
from terminal.bench.errors import BenchError
from terminal.bench.report import Figure, Ratio, SectionResult, latency_figure
from terminal.bench.slots import connect_when_present, inserted
from terminal.bench.timing import Subject, measure_interleaved
from terminal.keysource.psam import PsamKeySource
from terminal.session import CardSession

__all__ = ["minimum_apdus", "run"]

SECTION = "flows"
NEW_PIN = "135790"
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


def minimum_apdus(name: str, image_files: dict[int, bytes]) -> tuple[int, int, list[str]]:
    """``(card, psam, commands)``: the minimum of ``data/flows.toml`` for ``name``."""
    row = load_data("flows")["flows"][name]
    commands = [f"card: {c}" for c in row["card"]] + [f"psam: {c}" for c in row["psam"]]
    card = len(row["card"])
    certificate = row.get("certificate_reads")
    if certificate:
        fid = int(str(certificate).removeprefix("EF"), 16) | 0xEF00
        length = _der_length(image_files[fid])
        reads = ceil(length / APDU_CHUNK)
        card += reads
        commands.append(
            f"card: READ BINARY {certificate} x{reads} ({length}-byte certificate, 256 bytes per APDU)"
        )
    return card, len(row["psam"]), commands


@dataclass
class _Rig:
    """The card and PSAM in their slots, the open PSAM key source, the trust anchor."""

    stack: PcscStack
    card_link: VpcdLink
    reader: str
    psam: PsamKeySource
    anchors: tuple[Any, ...]

    def fresh_card(self, life_cycle: LifeCycle) -> None:
        self.card_link.card = CardOS(demo_card_image(life_cycle=life_cycle), interface="contact")

    def session(self) -> CardSession:
        return CardSession.open(self.reader, key_source=self.psam, trust_anchors=self.anchors)


@dataclass
class _InProcessRig:
    """The same card OS and PSAM called directly (``InProcessTransport``): no PC/SC."""

    psam: PsamKeySource
    anchors: tuple[Any, ...]
    transport: InProcessTransport

    def fresh_card(self, life_cycle: LifeCycle) -> None:
        self.transport = InProcessTransport(
            CardOS(demo_card_image(life_cycle=life_cycle), interface="contact")
        )

    def session(self) -> CardSession:
        session = CardSession(self.transport, key_source=self.psam, trust_anchors=self.anchors)
        session.connect()
        return session


@dataclass(frozen=True)
class _Flow:
    name: str
    label: str
    run: Callable[[CardSession], object]
    life_cycle: LifeCycle = LifeCycle.ACTIVE


def _flows(initial_pin: str) -> list[_Flow]:
    def verify(session: CardSession) -> object:
        # a wrong PIN would raise PinError: every timed call verified
        return flows.verify_pin(session, initial_pin)

    table = load_data("flows")["flows"]
    runs: dict[str, tuple[Callable[[CardSession], object], LifeCycle]] = {
        "read_basic": (flows.read_basic, LifeCycle.ACTIVE),
        "read_holder": (flows.read_holder, LifeCycle.ACTIVE),
        "authenticate": (flows.authenticate_card, LifeCycle.ACTIVE),
        "pin_verify": (verify, LifeCycle.ACTIVE),
        "pin_change": (lambda s: flows.change_pin(s, initial_pin, NEW_PIN), LifeCycle.ACTIVE),
        "pin_reset": (flows.reset_pin, LifeCycle.ACTIVE),
        "pin_unblock": (flows.unblock_pin, LifeCycle.ACTIVE),
        "activate": (flows.activate, LifeCycle.PERSONALISED),
    }
    if set(runs) != set(table):
        raise BenchError("data/flows.toml and the measured flows differ")
    return [_Flow(name, str(table[name]["label"]), call, cycle) for name, (call, cycle) in runs.items()]


def _session_call(
    rig: _Rig | _InProcessRig, flow: Callable[[CardSession], object] | None
) -> Callable[[], None]:
    def call() -> None:
        session = rig.session()
        try:
            if flow is not None:
                flow(session)
        finally:
            session.close()

    return call


def _count(rig: _Rig, psam_link: VpcdLink, flow: _Flow) -> tuple[int, int]:
    rig.fresh_card(flow.life_cycle)
    card_before, psam_before = rig.card_link.apdu_count, psam_link.apdu_count
    _session_call(rig, flow.run)()
    return rig.card_link.apdu_count - card_before, psam_link.apdu_count - psam_before


def run(ctx: BenchContext, result: SectionResult) -> None:
    plan = ctx.plan(SECTION)
    stack = ctx.stack()
    holder, _card = demo_holder("gen3")
    measured = _flows(holder.ssn.initial_pin)
    image = demo_card_image()
    files = {fid: bytes(f.content) for fid, f in image.binary_files.items()}
    with ctx.pool().take(2, "the flows") as slots, ExitStack() as held:
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
        rig = _Rig(stack, card_link, stack.reader_for_slot(card_slot), psam, anchors)
        local = _InProcessRig(
            PsamKeySource(InProcessTransport(PsamCard(demo_psam_image()))), anchors, InProcessTransport()
        )
        held.callback(local.psam.close)
        counts = {flow.name: _count(rig, psam_link, flow) for flow in measured}
        subjects = [
            Subject("session", _session_call(rig, None), prepare=lambda: rig.fresh_card(LifeCycle.ACTIVE))
        ]
        for flow in measured:
            subjects.append(
                Subject(
                    flow.name, _session_call(rig, flow.run), prepare=partial(rig.fresh_card, flow.life_cycle)
                )
            )
            subjects.append(
                Subject(
                    f"{flow.name}.in_process",
                    _session_call(local, flow.run),
                    prepare=partial(local.fresh_card, flow.life_cycle),
                )
            )
        ctx.log(f"flows: {', '.join(f.name for f in measured)} interleaved with a bare session")
        samples = measure_interleaved(subjects, plan)
        result.notes.append(
            f"slots {slots} (card, PSAM); each call is a whole card session; card images in memory "
            "(no fsync per state change); null journal hook; issuance and wallet load not measured "
            "(no terminal flows for them yet)"
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
