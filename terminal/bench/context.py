"""What every section gets: the mode, its plan, the PC/SC stack and the slots it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from apdu.errors import SscardError
from emulator.stack import PcscStack, StackError
from terminal.bench._data import load_data
from terminal.bench.errors import BenchError, BenchSetupError
from terminal.bench.slots import SlotPool
from terminal.bench.timing import Plan

__all__ = ["BenchContext", "Mode"]

Mode = Literal["full", "smoke"]


@dataclass
class BenchContext:
    """Shared state of one bench run; ``close()`` stops only what it started."""

    mode: Mode
    out_dir: Path
    slots: tuple[int, ...]
    log: Callable[[str], None] = field(default=lambda message: None)
    _stack: PcscStack | None = field(default=None, init=False)
    _pool: SlotPool | None = field(default=None, init=False)

    @property
    def smoke(self) -> bool:
        return self.mode == "smoke"

    def settings(self, section: str) -> dict[str, Any]:
        """The section's row of ``data/plan.toml`` for this mode."""
        try:
            return dict(load_data("plan")[self.mode][section])
        except KeyError:
            raise BenchError(f"data/plan.toml has no {self.mode}.{section}") from None

    def plan(self, section: str) -> Plan:
        row = self.settings(section)
        return Plan(warmup=int(row["warmup"]), rounds=int(row["rounds"]), per_round=int(row["per_round"]))

    def stack(self) -> PcscStack:
        """pcscd with the vpcd readers (started here if none runs)."""
        if self._stack is None:
            if not self.slots:
                raise BenchSetupError("no vpcd slots were given to the bench")
            stack = PcscStack(min_slots=max(self.slots) + 1)
            try:
                stack.start()
            except (StackError, SscardError) as exc:
                raise BenchSetupError(f"PC/SC stack unavailable: {exc}") from exc
            self._stack = stack
            self.log(f"pcscd {'started by the bench' if stack.started else 'already running (left alone)'}")
        return self._stack

    def pool(self) -> SlotPool:
        if self._pool is None:
            self._pool = SlotPool(self.stack(), self.slots)
        return self._pool

    def close(self) -> None:
        stack, self._stack = self._stack, None
        self._pool = None
        if stack is not None:
            stack.stop()
