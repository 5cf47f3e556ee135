"""One-shot, seeded faults of a virtual card slot.

A :class:`Fault` is data (kind and parameters, declared in
``emulator/data/faults.toml``); :meth:`Fault.parse` validates a mapping
(from the CLI, the control socket or a TOML file) and raises
:class:`emulator.errors.FaultSpecError` naming the bad parameter.  A
:class:`FaultPlan` holds the faults armed on one slot: each counts the APDUs
that match its trigger (every APDU, or those with INS ``ins``) from the
moment it is armed, fires at the ``nth`` one, and is gone.  With
``between = (lo, hi)`` the nth is chosen in that range by a
``random.Random(seed)``, so a fault campaign is reproducible.

:class:`FaultyCard` wraps a card (any :class:`emulator.vpcd.VirtualCard`)
and applies the plan in ``process``:

==================  ===========================================================
kind                effect
==================  ===========================================================
``tear_before``     card pulled before the command runs (no state change)
``tear_after``      command runs (state committed), card pulled, no answer
``mute``            no answer for ``hold`` s, then the connection drops
``slow``            ``delay`` s, then executed and answered normally
``wrong``           ``response`` sent instead of the card's answer
``corrupt``         ``count`` answer bytes XORed with non-zero random masks
``truncate``        the answer cut to ``keep`` bytes
``t0_get_response`` data answered as ``61xx``, served by GET RESPONSE
``t0_wrong_le``     Le differing from the data length answered as ``6Cxx``
==================  ===========================================================

Pulling the card raises :class:`emulator.vpcd.Tear`, which makes the vpcd
link close its socket (the reader sees the card removed).  Waits are
bounded by the data file's limits and end early when the slot is removed
(``cancel`` event), so no fault can hang a reader or a test.  The plan's
``fired`` log records kind, APDU index and INS, never APDU data.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apdu.errors import CardRemovedError
from apdu.inprocess import InProcessTransport
from emulator._data import load_data
from emulator.card_os import response
from emulator.card_os.command import parse_command
from emulator.errors import FaultSpecError
from emulator.vpcd import CardWrapper, Tear, VirtualCard

__all__ = [
    "TRIGGER_PARAMS",
    "Fault",
    "FaultEvent",
    "FaultPlan",
    "FaultyCard",
    "InProcessTear",
    "fault_kinds",
    "parse_fault_file",
]

TRIGGER_PARAMS = ("nth", "ins", "between", "seed")
_SW_OK = 0x9000
_INS_GET_RESPONSE = 0xC0


def _table() -> dict[str, Any]:
    return load_data("faults")


def fault_kinds() -> dict[str, dict[str, Any]]:
    """Every fault kind with its parameter names and texts (from the data file)."""
    kinds: dict[str, dict[str, Any]] = _table()["kinds"]
    return kinds


def _param_error(name: str, why: str, why_zh: str) -> FaultSpecError:
    return FaultSpecError(f"{name}: {why}", detail_zh=f"{name}：{why_zh}")


def _number(name: str, value: Any, spec: Mapping[str, Any], kind: type) -> Any:
    if isinstance(value, bool):
        raise _param_error(name, "must be a number", "须为数字")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise _param_error(name, "must be a number", "须为数字") from None
    if kind is int and isinstance(value, float) and value != number:
        raise _param_error(name, "must be a whole number", "须为整数")
    low, high = spec.get("min"), spec.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        raise _param_error(name, f"must be {low}..{high}", f"取值范围 {low}..{high}")
    return number


def _hex_bytes(name: str, value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise _param_error(name, "must be hex text", "须为十六进制文本")
    text = value.replace(" ", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _param_error(name, "must be hex text", "须为十六进制文本") from None


def _convert(name: str, value: Any) -> Any:
    spec: Mapping[str, Any] = _table()["params"][name]
    kind = spec["type"]
    if kind == "int":
        return _number(name, value, spec, int)
    if kind == "float":
        return float(_number(name, value, spec, float))
    if kind == "bool":
        if not isinstance(value, bool):
            raise _param_error(name, "must be true or false", "须为 true 或 false")
        return value
    if kind == "byte":
        raw = _hex_bytes(name, value) if isinstance(value, str) else value
        if isinstance(raw, bytes):
            if len(raw) != 1:
                raise _param_error(name, "must be one byte (hex)", "须为一个字节（十六进制）")
            return raw[0]
        return _number(name, raw, {"min": 0, "max": 255}, int)
    if kind == "hex":
        raw = _hex_bytes(name, value)
        if not spec["min"] <= len(raw) <= spec["max"]:
            raise _param_error(
                name,
                f"must be {spec['min']}..{spec['max']} bytes",
                f"长度须为 {spec['min']}..{spec['max']} 字节",
            )
        return raw
    if kind == "range":
        return _range(name, value, spec)
    raise _param_error(name, "unknown parameter type in faults.toml", "参数类型未定义")


def _range(name: str, value: Any, spec: Mapping[str, Any]) -> tuple[int, int]:
    if isinstance(value, str):
        parts = value.split("-")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = []
    if len(parts) != 2:
        raise _param_error(name, "must be LO-HI", "格式须为 LO-HI")
    low = _number(name, parts[0], spec, int)
    high = _number(name, parts[1], spec, int)
    if low > high:
        raise _param_error(name, "LO must not exceed HI", "LO 不能大于 HI")
    return int(low), int(high)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: ``kind``, trigger (``nth``, ``ins``, ``between``, ``seed``)
    and the kind's parameters in ``params`` (defaults filled in)."""

    kind: str
    nth: int = 1
    ins: int | None = None
    between: tuple[int, int] | None = None
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Fault:
        """Validate a mapping ``{"kind": ..., <param>: value, ...}``."""
        if not isinstance(spec, Mapping):
            raise _param_error("fault", "must be a table", "须为键值表")
        kind = spec.get("kind")
        kinds = fault_kinds()
        if not isinstance(kind, str) or kind not in kinds:
            raise _param_error("kind", f"must be one of {', '.join(kinds)}", f"须为 {', '.join(kinds)} 之一")
        allowed = set(TRIGGER_PARAMS) | set(kinds[kind]["params"])
        for name in spec:
            if name != "kind" and name not in allowed:
                raise _param_error(str(name), f"not a parameter of {kind}", f"不是 {kind} 的参数")
        defaults: Mapping[str, Any] = _table()["params"]
        values: dict[str, Any] = {}
        for name in kinds[kind]["params"]:
            if name in spec and spec[name] is not None:
                values[name] = _convert(name, spec[name])
            elif "default" in defaults[name]:
                values[name] = _convert(name, defaults[name]["default"])
            else:
                values[name] = None
        trigger = {name: _convert(name, spec[name]) for name in TRIGGER_PARAMS if spec.get(name) is not None}
        if "nth" in trigger and "between" in trigger:
            raise _param_error("between", "give nth or between, not both", "nth 与 between 只能给出一个")
        return cls(
            kind=kind,
            nth=int(trigger.get("nth", 1)),
            ins=trigger.get("ins"),
            between=trigger.get("between"),
            seed=int(trigger.get("seed", 0)),
            params=values,
        )

    @classmethod
    def of(cls, kind: str, **params: Any) -> Fault:
        """``Fault.of("tear_after", ins=0x20)``: :meth:`parse` with keywords."""
        return cls.parse({"kind": kind, **params})

    def param(self, name: str) -> Any:
        return self.params.get(name)

    def resolved(self) -> Fault:
        """This fault with ``nth`` chosen in ``between`` by the seeded generator."""
        if self.between is None:
            return self
        low, high = self.between
        nth = random.Random(self.seed).randint(low, high)
        return Fault(self.kind, nth, self.ins, None, self.seed, self.params)

    def to_mapping(self) -> dict[str, Any]:
        """A JSON-able mapping that :meth:`parse` accepts again."""
        out: dict[str, Any] = {"kind": self.kind, "nth": self.nth, "seed": self.seed}
        if self.ins is not None:
            out["ins"] = f"{self.ins:02X}"
        if self.between is not None:
            out["between"] = f"{self.between[0]}-{self.between[1]}"
            del out["nth"]
        for name, value in self.params.items():
            if value is None:
                continue
            out[name] = value.hex().upper() if isinstance(value, bytes) else value
        return out


def parse_fault_file(text: str) -> list[tuple[int | None, Fault]]:
    """Faults of a TOML file: ``[[fault]]`` tables with ``kind``, the
    parameters and an optional ``slot``.  Returns ``(slot, fault)`` pairs."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise _param_error("file", "not valid TOML", "不是有效的 TOML") from None
    rows = doc.get("fault")
    if not isinstance(rows, list) or not rows:
        raise _param_error("file", "needs [[fault]] tables", "须包含 [[fault]] 表")
    out: list[tuple[int | None, Fault]] = []
    for row in rows:
        if not isinstance(row, dict):
            raise _param_error("fault", "must be a table", "须为键值表")
        spec = dict(row)
        slot = spec.pop("slot", None)
        if slot is not None:
            slot = int(_number("slot", slot, {"min": 0, "max": 63}, int))
        out.append((slot, Fault.parse(spec)))
    return out


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault that fired: its kind, the slot's APDU index (1-based) and INS."""

    kind: str
    apdu_index: int
    ins: int | None

    def to_mapping(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "apdu_index": self.apdu_index,
            "ins": None if self.ins is None else f"{self.ins:02X}",
        }


@dataclass(slots=True)
class _Armed:
    fault: Fault
    seen: int = 0


class FaultPlan:
    """The faults armed on one slot (thread-safe; each fires once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._fired: list[FaultEvent] = []
        self.apdu_count = 0

    def arm(self, fault: Fault) -> Fault:
        """Arm ``fault`` (``between`` resolved); returns the fault as armed."""
        armed = fault.resolved()
        with self._lock:
            self._armed.append(_Armed(armed))
        return armed

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    @property
    def armed(self) -> list[Fault]:
        with self._lock:
            return [entry.fault for entry in self._armed]

    @property
    def fired(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._fired)

    @property
    def idle(self) -> bool:
        return not self._armed

    def next_fault(self, apdu: bytes) -> Fault | None:
        """Count ``apdu`` against every armed fault; the first whose nth is
        reached is removed from the plan, logged and returned."""
        ins = apdu[1] if len(apdu) > 1 else None
        with self._lock:
            self.apdu_count += 1
            chosen: _Armed | None = None
            for entry in self._armed:
                if entry.fault.ins is not None and entry.fault.ins != ins:
                    continue
                entry.seen += 1
                if chosen is None and entry.seen >= entry.fault.nth:
                    chosen = entry
            if chosen is None:
                return None
            self._armed.remove(chosen)
            self._fired.append(FaultEvent(chosen.fault.kind, self.apdu_count, ins))
            return chosen.fault


def _split(answer: bytes) -> tuple[bytes, int]:
    if len(answer) < 2:
        return answer, -1
    return answer[:-2], int.from_bytes(answer[-2:], "big")


class FaultyCard:
    """A :class:`emulator.vpcd.VirtualCard` applying a :class:`FaultPlan`.

    ``cancel``: set when the slot is removed, ending any fault wait early.
    ``on_tear``: called with the fault after it pulled the card (the slot
    uses it to put the card back after ``reinsert_after``).
    """

    def __init__(
        self,
        card: VirtualCard,
        plan: FaultPlan,
        *,
        cancel: threading.Event | None = None,
        on_tear: Callable[[Fault], None] | None = None,
    ) -> None:
        self.card = card
        self.plan = plan
        self.cancel = cancel if cancel is not None else threading.Event()
        self.on_tear = on_tear
        self._pending: bytes = b""
        self._pending_sw = _SW_OK
        self._held_command: bytes | None = None
        self._held_answer: bytes = b""

    def __repr__(self) -> str:
        return f"FaultyCard({self.card!r})"

    # -- VirtualCard ------------------------------------------------------------------------------

    def atr(self) -> bytes:
        return self.card.atr()

    def power_on(self) -> None:
        self._drop_t0_state()
        self.card.power_on()

    def power_off(self) -> None:
        self._drop_t0_state()
        self.card.power_off()

    def reset(self) -> None:
        self._drop_t0_state()
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        if self.plan.idle and not self._pending and self._held_command is None:
            self.plan.apdu_count += 1
            return self.card.process(apdu)
        fault = self.plan.next_fault(apdu)
        if fault is None:
            return self._execute(apdu)
        return self._apply(fault, apdu)

    # -- faults -----------------------------------------------------------------------------------

    def _apply(self, fault: Fault, apdu: bytes) -> bytes:
        kind = fault.kind
        if kind == "tear_before":
            self._tear(fault)
        if kind == "tear_after":
            self._execute(apdu)
            self._tear(fault)
        if kind == "mute":
            if fault.param("execute"):
                self._execute(apdu)
            self.cancel.wait(float(fault.param("hold")))
            self._tear(fault)
        if kind == "slow":
            if self.cancel.wait(float(fault.param("delay"))):
                self._tear(fault)
            return self._execute(apdu)
        if kind == "wrong":
            if fault.param("execute"):
                self._execute(apdu)
            answer: bytes = fault.param("response")
            return answer
        if kind == "corrupt":
            return self._corrupt(self._execute(apdu), int(fault.param("count")), fault.seed)
        if kind == "truncate":
            return self._execute(apdu)[: int(fault.param("keep"))]
        if kind == "t0_get_response":
            return self._as_get_response(self._execute(apdu))
        if kind == "t0_wrong_le":
            return self._as_wrong_le(apdu, self._execute(apdu))
        raise FaultSpecError(kind)

    def _tear(self, fault: Fault) -> None:
        self._drop_t0_state()
        if self.on_tear is not None:
            self.on_tear(fault)
        raise Tear(fault.kind)

    @staticmethod
    def _corrupt(answer: bytes, count: int, seed: int) -> bytes:
        if not answer:
            return answer
        rng = random.Random(seed)
        out = bytearray(answer)
        for index in rng.sample(range(len(out)), min(count, len(out))):
            out[index] ^= rng.randrange(1, 256)
        return bytes(out)

    def _as_get_response(self, answer: bytes) -> bytes:
        data, sw = _split(answer)
        if not data or sw < 0:
            return answer
        self._pending, self._pending_sw = data, sw
        return (0x6100 | (len(data) if len(data) < response.SHORT_MAX else 0)).to_bytes(2, "big")

    def _as_wrong_le(self, apdu: bytes, answer: bytes) -> bytes:
        data, sw = _split(answer)
        le = _le_of(apdu)
        if not data or sw < 0 or le is None or le == len(data) or len(data) > 0xFF:
            return answer
        self._held_command = apdu[:-1]
        self._held_answer = answer
        return (0x6C00 | len(data)).to_bytes(2, "big")

    # -- T=0 state of the faults ----------------------------------------------------------------

    def _drop_t0_state(self) -> None:
        self._pending = b""
        self._pending_sw = _SW_OK
        self._held_command = None
        self._held_answer = b""

    def _execute(self, apdu: bytes) -> bytes:
        """Run ``apdu`` through the faults' T=0 state, then the card."""
        if self._held_command is not None:
            held, answer = self._held_command, self._held_answer
            self._held_command, self._held_answer = None, b""
            data, _ = _split(answer)
            if apdu[:-1] == held and _le_of(apdu) == len(data):
                return answer
        if self._pending:
            pending, final_sw = self._pending, self._pending_sw
            self._pending, self._pending_sw = b"", _SW_OK
            if len(apdu) >= 4 and apdu[1] == _INS_GET_RESPONSE and apdu[0] & 0xFC == 0:
                return self._serve_get_response(apdu, pending, final_sw)
        return self.card.process(apdu)

    def _serve_get_response(self, apdu: bytes, pending: bytes, final_sw: int) -> bytes:
        data, sw, rest = response.get_response(parse_command(apdu), pending)
        if rest:
            self._pending, self._pending_sw = rest, final_sw
        elif sw == _SW_OK:
            sw = final_sw
        return data + sw.to_bytes(2, "big")


def _le_of(apdu: bytes) -> int | None:
    """Le of a short case-2 or case-4 APDU (00 = 256); None without Le."""
    if len(apdu) == 5:
        return apdu[4] or 256
    if len(apdu) > 5:
        lc = apdu[4]
        if lc and len(apdu) == 5 + lc + 1:
            return apdu[-1] or 256
    return None


class InProcessTear(CardWrapper):
    """Turns a fault's :class:`emulator.vpcd.Tear` into what an in-process
    reader sees when the card is pulled: the card is gone from ``transport``
    and the command fails with :class:`apdu.errors.CardRemovedError` (over
    vpcd, :class:`emulator.vpcd.VpcdLink` closes the link instead)."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.transport: InProcessTransport | None = None

    def process(self, apdu: bytes) -> bytes:
        try:
            return self.card.process(apdu)
        except Tear:
            if self.transport is not None:
                self.transport.remove()
            raise CardRemovedError("in-process card torn out") from None
