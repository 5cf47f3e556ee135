"""The ``sscard emulator run`` process: cards on slots until a signal.

:func:`run_host` brings the PC/SC stack up when asked (``PcscStack``: uses
a running pcscd, or starts one and stops it again at the end), refuses
slots another running host already serves, puts the cards of a
:class:`HostPlan` on their slots, arms the faults of a fault file, serves
the control socket, reports readiness through a callback, and waits for
SIGINT or SIGTERM (or ``stop``).  On the way out it pulls every card and
removes the control socket.  Card state needs no saving at exit: each
change was committed to its image file before the card answered.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from emulator.control import list_hosts
from emulator.errors import FaultSpecError, SlotInUse, SlotUnavailable
from emulator.stack import PcscStack, StackError

if TYPE_CHECKING:
    from emulator.card_os import Interface
    from emulator.runner import CardHost

__all__ = ["HostPlan", "run_host"]


@dataclass(frozen=True, slots=True)
class HostPlan:
    """What ``run`` puts where.  ``cards``: ``(slot, image or None)``; None is
    the in-memory demo card of ``generation``."""

    cards: tuple[tuple[int, Path | None], ...]
    psam_slot: int | None = None
    psam_image: Path | None = None
    generation: int = 3
    contactless: frozenset[int] = frozenset()
    insert: bool = True
    fault_file: Path | None = None
    bring_up: bool = True
    control_dir: Path | None = None

    @property
    def slots(self) -> list[int]:
        slots = [slot for slot, _ in self.cards]
        if self.psam_slot is not None:
            slots.append(self.psam_slot)
        return slots


def _check_free(plan: HostPlan) -> None:
    ours = set(plan.slots)
    if len(ours) != len(plan.slots):
        raise SlotInUse("a slot is given twice", detail_zh="同一槽位被指定了两次")
    for _path, status in list_hosts(plan.control_dir):
        taken = ours & {entry.get("slot") for entry in status.get("slots", [])}
        if taken:
            slot = min(int(value) for value in taken if value is not None)
            raise SlotInUse(
                f"slot {slot} (host pid {status.get('pid')})",
                detail_zh=f"槽位 {slot}（模拟器进程 {status.get('pid')}）",
            )


def _load_faults(host: CardHost, plan: HostPlan) -> None:
    from emulator.faults import parse_fault_file

    if plan.fault_file is None:
        return
    try:
        text = plan.fault_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise FaultSpecError(plan.fault_file.name, detail_zh=f"{plan.fault_file.name} 无法读取") from None
    default_slot = plan.cards[0][0] if plan.cards else plan.psam_slot
    for slot, fault in parse_fault_file(text):
        host.arm_fault(slot if slot is not None else int(default_slot or 0), fault)


def _start_stack(plan: HostPlan) -> PcscStack | None:
    if not plan.bring_up:
        return None
    stack = PcscStack(min_slots=max(plan.slots) + 1)
    try:
        stack.start()
    except StackError as exc:
        first = str(exc).splitlines()[0]
        raise SlotUnavailable(first, detail_zh=first) from None
    return stack


def _populate(host: CardHost, plan: HostPlan) -> None:
    for slot, image in plan.cards:
        interface: Interface = "contactless" if slot in plan.contactless else "contact"
        host.add(slot, image=image, interface=interface, generation=plan.generation, insert=plan.insert)
    if plan.psam_slot is not None:
        if plan.psam_image is not None:
            host.add(plan.psam_slot, image=plan.psam_image, insert=plan.insert)
        else:
            host.add(plan.psam_slot, psam=True, insert=plan.insert)


def run_host(
    plan: HostPlan,
    ready: Callable[[Path, list[dict[str, Any]]], None],
    *,
    stop: threading.Event | None = None,
) -> None:
    """Run ``plan`` until SIGINT/SIGTERM or ``stop`` is set (see the module docstring)."""
    stop = stop if stop is not None else threading.Event()
    _check_free(plan)
    from emulator.runner import CardHost  # after the cheap checks: it loads the card OS

    previous: dict[int, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    stack = _start_stack(plan)
    try:
        with CardHost() as host:
            _populate(host, plan)
            _load_faults(host, plan)
            socket_path = host.serve_control(plan.control_dir)
            ready(socket_path, host.status())
            while not stop.wait(0.5):
                pass
    finally:
        if stack is not None:
            stack.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
