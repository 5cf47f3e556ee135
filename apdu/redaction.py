"""Redaction of secrets and personal data in APDU traces and reprs.

The policy is data (``apdu/data/redaction.toml``).  A redacted rendering is a
sequence of *segments*: ``bytes`` shown as hex, or an ``int`` n shown as
``**(n bytes)**``.  Record commands that address the current EF need to know
which EF is current; :class:`Redactor` tracks it from successful SELECTs and
treats an unknown current EF as personal (redacted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from apdu._tables import load_table

if TYPE_CHECKING:
    from apdu.command import CommandApdu

__all__ = [
    "Policy",
    "Redactor",
    "Rule",
    "Segment",
    "load_policy",
    "redact_command_data",
    "redacted_marker",
    "render_hex",
]

Segment = bytes | int

INS_SELECT = 0xA4


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    ins: int
    cla: int | None
    command: bool
    response: bool
    files: frozenset[int]
    sfi: frozenset[int]

    def matches(self, cmd: CommandApdu, current_ef: int | None) -> bool:
        if cmd.ins != self.ins:
            return False
        if self.cla is not None and cmd.cla != self.cla:
            return False
        if not self.files and not self.sfi:
            return True
        sfi = cmd.p2 >> 3
        if sfi:
            return sfi in self.sfi
        return current_ef is None or current_ef in self.files


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    mac_length: int

    def command_hidden(self, cmd: CommandApdu, current_ef: int | None) -> bool:
        return cmd.sensitive or any(r.command and r.matches(cmd, current_ef) for r in self.rules)

    def response_hidden(self, cmd: CommandApdu, current_ef: int | None) -> bool:
        return cmd.sensitive or any(r.response and r.matches(cmd, current_ef) for r in self.rules)

    def rules_for(self, cmd: CommandApdu, current_ef: int | None) -> list[str]:
        return [r.name for r in self.rules if r.matches(cmd, current_ef)]


@cache
def load_policy() -> Policy:
    table = load_table("redaction")
    rules = []
    for row in table["rule"]:
        rules.append(
            Rule(
                name=row["name"],
                ins=int(row["ins"], 16),
                cla=int(row["cla"], 16) if "cla" in row else None,
                command=row.get("command") == "data",
                response=row.get("response") == "data",
                files=frozenset(int(f, 16) for f in row.get("files", [])),
                sfi=frozenset(int(s) for s in row.get("sfi", [])),
            )
        )
    return Policy(rules=tuple(rules), mac_length=int(table["sm"]["mac_length"]))


def _command_data_segments(cmd: CommandApdu, policy: Policy, current_ef: int | None) -> list[Segment]:
    data = cmd.data
    if not data:
        return []
    if policy.command_hidden(cmd, current_ef):
        return [len(data)]
    if cmd.secure_messaging and len(data) >= policy.mac_length:
        cut = len(data) - policy.mac_length
        return ([data[:cut]] if cut else []) + [policy.mac_length]
    return [data]


def redact_command_data(cmd: CommandApdu) -> list[Segment]:
    """Stateless redaction of a command's data field (current EF unknown)."""
    return _command_data_segments(cmd, load_policy(), None)


def redacted_marker(n: int) -> str:
    return f"**({n} bytes)**"


def render_hex(segments: Sequence[Segment], sep: str = " ") -> str:
    """Render segments: bytes as hex (separated by ``sep``), ints as markers."""
    out = []
    for seg in segments:
        if isinstance(seg, int):
            out.append(redacted_marker(seg))
        elif seg:
            out.append(seg.hex(sep).upper() if sep else seg.hex().upper())
    return sep.join(out)


class Redactor:
    """Stateful redactor for one card session (tracks the current EF)."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or load_policy()
        self.current_ef: int | None = None

    def command(self, cmd: CommandApdu) -> list[Segment]:
        """Segments of the whole encoded command."""
        encoded = cmd.encode()
        data_len = len(cmd.data)
        if not data_len:
            return [encoded]
        # Locate the data field inside the encoding (after Lc, before Le).
        start = 4 + (3 if cmd.extended else 1)
        head, tail = encoded[:start], encoded[start + data_len :]
        segs: list[Segment] = [head]
        segs += _command_data_segments(cmd, self.policy, self.current_ef)
        if tail:
            segs.append(tail)
        return segs

    def response(self, cmd: CommandApdu | None, raw: bytes) -> list[Segment]:
        """Segments of a raw response (data + SW); the SW is always shown."""
        if len(raw) < 2:
            return [raw]
        data, sw = raw[:-2], raw[-2:]
        if data and self.response_hidden(cmd):
            return [len(data), sw]
        return [data, sw] if data else [sw]

    def response_hidden(self, cmd: CommandApdu | None) -> bool:
        return cmd is None or self.policy.response_hidden(cmd, self.current_ef)

    def observe(self, cmd: CommandApdu, sw: int) -> None:
        """Update the current EF after a command completed with ``sw``."""
        if cmd.ins != INS_SELECT or cmd.cla & 0x80:
            return
        if sw != 0x9000 and (sw >> 8) not in (0x61, 0x62, 0x63):
            return
        if cmd.p1 in (0x00, 0x02) and len(cmd.data) == 2:
            self.current_ef = int.from_bytes(cmd.data, "big")
        else:
            self.current_ef = None
