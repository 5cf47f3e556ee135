"""APDU tracing with policy-based redaction, and golden transcripts.

A :class:`Tracer` logs every command and response to the ``sscard.apdu``
logger (DEBUG) and optionally appends JSON lines to a transcript file::

    {"dir": ">>", "hex": "0020000103**(3 bytes)**", "redacted": true, "t": 0.0012}
    {"dir": "<<", "hex": "63C2", "redacted": false, "t": 0.0031}

``t`` is seconds since the tracer was created.  What is redacted is decided by
:mod:`apdu.redaction` (command type, addressed file), never by content.
:func:`load_transcript` and :func:`compare_transcripts` support golden tests.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Self

from apdu.command import CommandApdu
from apdu.errors import ProtocolError
from apdu.redaction import Redactor, Segment, render_hex

__all__ = [
    "Direction",
    "Tracer",
    "TranscriptEntry",
    "compare_transcripts",
    "load_transcript",
    "parse_transcript",
]

Direction = Literal[">>", "<<"]
LOGGER_NAME = "sscard.apdu"

# One token of transcript hex: a byte, a ``..`` wildcard byte, or a redaction marker.
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{2}|\.\.|\*\*\((\d{1,6}) bytes\)\*\*")
# The fewest bytes of a line: a command header, or a status word.
_MIN_BYTES: dict[str, int] = {">>": 4, "<<": 2}


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    dir: Direction
    hex: str
    redacted: bool
    t: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "dir": self.dir,
                "hex": self.hex,
                "redacted": self.redacted,
                "t": round(self.t, 6),
            },
            ensure_ascii=False,
        )


class Tracer:
    """Redacting APDU tracer (one per card session: it tracks the current EF)."""

    def __init__(
        self,
        *,
        logger: logging.Logger | None = None,
        transcript: str | Path | IO[str] | None = None,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.monotonic,
        reader: str = "",
    ) -> None:
        self.log = logger or logging.getLogger(LOGGER_NAME)
        self.redactor = redactor or Redactor()
        self._clock = clock
        self._t0 = clock()
        self._reader = reader
        self._own_file = False
        self._file: IO[str] | None
        if transcript is None:
            self._file = None
        elif isinstance(transcript, (str, Path)):
            self._file = open(transcript, "a", encoding="utf-8")  # closed in close()
            self._own_file = True
        else:
            self._file = transcript
        self.entries: list[TranscriptEntry] = []

    # -- recording --------------------------------------------------------

    def command(self, cmd: CommandApdu, *, redact_as: CommandApdu | None = None) -> TranscriptEntry:
        """Record a command.  ``redact_as``: apply another command's policy
        (e.g. the chunks of a chained command)."""
        segs = self.redactor.command(cmd)
        policy, ef = self.redactor.policy, self.redactor.current_ef
        if redact_as is not None and cmd.data and policy.command_hidden(redact_as, ef):
            start = 4 + (3 if cmd.extended else 1)
            encoded = cmd.encode()
            tail = encoded[start + len(cmd.data) :]
            segs = [encoded[:start], len(cmd.data)]
            if tail:
                segs.append(tail)
        return self._record(">>", segs)

    def response(self, raw: bytes, *, cmd: CommandApdu | None) -> TranscriptEntry:
        """Record a raw response; ``cmd`` is the command whose policy applies
        (the original command for GET RESPONSE data)."""
        entry = self._record("<<", self.redactor.response(cmd, raw))
        if cmd is not None and len(raw) >= 2:
            self.redactor.observe(cmd, int.from_bytes(raw[-2:], "big"))
        return entry

    def note(self, text: str) -> None:
        """A free-text line in the log (not in the transcript)."""
        self.log.debug("%s%s", self._prefix(), text)

    def _prefix(self) -> str:
        return f"[{self._reader}] " if self._reader else ""

    def _record(self, direction: Direction, segs: Sequence[Segment]) -> TranscriptEntry:
        redacted = any(isinstance(s, int) for s in segs)
        entry = TranscriptEntry(direction, render_hex(segs, sep=""), redacted, self._clock() - self._t0)
        self.entries.append(entry)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s%s %s", self._prefix(), direction, render_hex(segs, sep=" "))
        if self._file is not None:
            self._file.write(entry.to_json() + "\n")
            self._file.flush()
        return entry

    def close(self) -> None:
        if self._file is not None and self._own_file:
            self._file.close()
        self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- golden transcripts ------------------------------------------------------


def parse_transcript(lines: Iterable[str]) -> list[TranscriptEntry]:
    """Parse JSON-lines transcript text; blank lines and ``#`` comments are skipped."""
    out: list[TranscriptEntry] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"transcript line {number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ProtocolError(f"transcript line {number}: expected an object")
        direction = obj.get("dir")
        hex_text = obj.get("hex")
        if direction not in (">>", "<<"):
            raise ProtocolError(f"transcript line {number}: dir must be '>>' or '<<'")
        if not isinstance(hex_text, str):
            raise ProtocolError(f"transcript line {number}: hex must be a string")
        _check_hex(number, direction, hex_text)
        redacted = obj.get("redacted", "**(" in hex_text)
        t = obj.get("t", 0.0)
        if not isinstance(redacted, bool) or isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ProtocolError(f"transcript line {number}: bad 'redacted' or 't'")
        out.append(TranscriptEntry(direction, hex_text.strip(), redacted, float(t)))
    return out


def _check_hex(number: int, direction: str, hex_text: str) -> None:
    """Reject transcript hex that is not whole bytes, wildcards and markers.

    The message names the problem and the offset, never the value."""
    text = hex_text
    pos = count = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _HEX_TOKEN.match(text, pos)
        if match is None:
            problem = "not hexadecimal"
            if text[pos] in "0123456789abcdefABCDEF":
                if pos + 1 < len(text) and not text[pos + 1].isspace():
                    pos += 1  # a hex digit followed by a foreign character
                else:
                    problem = "odd number of hex digits"
            raise ProtocolError(f"transcript line {number}: hex: {problem} at offset {pos}")
        count += int(match.group(1)) if match.group(1) else 1
        pos = match.end()
    if count < _MIN_BYTES[direction]:
        what = "a command header (4 bytes)" if direction == ">>" else "a status word (2 bytes)"
        raise ProtocolError(f"transcript line {number}: hex: shorter than {what}")


def load_transcript(path: str | Path) -> list[TranscriptEntry]:
    with open(path, encoding="utf-8") as fh:
        return parse_transcript(fh)


def _norm(hex_text: str) -> str:
    return hex_text.upper().replace(" ", "")


def compare_transcripts(expected: Sequence[TranscriptEntry], actual: Sequence[TranscriptEntry]) -> list[str]:
    """Differences between two transcripts, ignoring timestamps (empty = equal).

    In the expected hex, ``..`` matches any single byte (for values that
    legitimately vary, such as a terminal random that is not redacted)."""
    diffs: list[str] = []
    for i, (exp, act) in enumerate(zip(expected, actual, strict=False)):
        if exp.dir != act.dir:
            diffs.append(f"#{i}: direction {act.dir} != expected {exp.dir}")
        elif not _hex_matches(_norm(exp.hex), _norm(act.hex)):
            diffs.append(f"#{i} {exp.dir}: {act.hex} != expected {exp.hex}")
    if len(expected) != len(actual):
        diffs.append(f"length {len(actual)} != expected {len(expected)}")
    return diffs


def _hex_matches(pattern: str, text: str) -> bool:
    if ".." not in pattern:
        return pattern == text
    i = j = 0
    while i < len(pattern) and j < len(text):
        if pattern.startswith("..", i):
            if text.startswith("**(", j):
                return False
            i += 2
            j += 2
            continue
        if pattern[i] != text[j]:
            return False
        i += 1
        j += 1
    return i == len(pattern) and j == len(text)
