"""``sscard apdu HEX...``: send raw command APDUs and print the trace.

Each argument is one command APDU in hex (spaces, ``:`` and ``-`` are
ignored).  All are checked before the card is touched (bad hex: -41, a
malformed APDU: -14, exit 2), then sent in one PC/SC transaction with the
protocol handling of :mod:`apdu.protocol` (61xx GET RESPONSE, 6Cxx).  The
trace is printed as :class:`apdu.trace.Tracer` records it: redacted by
command type (PIN blocks, cryptograms, holder records), never the raw bytes.
A card status word other than 9000 is printed, not an error (exit 0).
``--reader`` may name a PSAM reader here.
"""

from __future__ import annotations

import re
from typing import Any

import click

from terminal.cli_commands.card import select_card_reader
from terminal.cli_commands.output import emit, label, progress, text
from terminal.cli_commands.usage import command_help

__all__ = ["apdu_command", "parse_apdu"]

_SEPARATORS = re.compile(r"[\s:\-]")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")


def parse_apdu(index: int, value: str) -> Any:
    """The :class:`~apdu.command.CommandApdu` of argument ``index`` (1-based)."""
    from apdu.command import CommandApdu
    from apdu.errors import InvalidInput, ProtocolError

    digits = _SEPARATORS.sub("", value)
    if not _HEX.match(digits):
        raise InvalidInput(
            f"APDU {index}: hex digits expected, an even number of them",
            kind="chars",
            message_zh=f"第{index}条APDU须为偶数个十六进制字符",
        )
    try:
        return CommandApdu.decode(bytes.fromhex(digits))
    except ProtocolError as exc:
        raise InvalidInput(
            f"APDU {index}: {exc}", kind="parameter", message_zh=f"第{index}条APDU格式错误"
        ) from None


def _exchange(cmd_entries: list[Any], sw: int) -> dict[str, Any]:
    from apdu.status import describe

    meaning_en, meaning_zh = describe(sw)
    commands = [e for e in cmd_entries if e.dir == ">>"]
    responses = [e for e in cmd_entries if e.dir == "<<"]
    return {
        "command": commands[0].hex if commands else "",
        "response": responses[-1].hex if responses else "",
        "sw": f"{sw:04X}",
        "meaning": meaning_zh,
        "meaning_en": meaning_en,
        "redacted": any(e.redacted for e in cmd_entries),
        "trace": [{"dir": e.dir, "hex": e.hex, "redacted": e.redacted} for e in cmd_entries],
    }


@click.command("apdu", help=command_help("apdu", "HEX: one command APDU per argument, e.g. 00A4040000."))
@click.argument("apdus", nargs=-1, required=True, metavar="HEX...")
@click.pass_context
def apdu_command(ctx: click.Context, apdus: tuple[str, ...]) -> None:
    from apdu.pcsc import PcscTransport
    from apdu.protocol import ApduProtocol
    from apdu.trace import Tracer
    from terminal.link import GuardedTransport

    commands = [parse_apdu(index, value) for index, value in enumerate(apdus, 1)]
    reader = select_card_reader(ctx, include_psam=True)
    tracer = Tracer(reader=reader.name)
    transport = PcscTransport(reader.name, dispose="reset_if_changed")
    protocol = ApduProtocol(GuardedTransport(transport), tracer)
    exchanges: list[dict[str, Any]] = []
    with progress(ctx, "connect"):
        transport.connect()
    try:
        with transport.transaction():
            for cmd in commands:
                start = len(tracer.entries)
                response = protocol.send(cmd, check=False)
                exchanges.append(_exchange(tracer.entries[start:], response.sw))
        atr = transport.atr.hex().upper()
    finally:
        transport.disconnect()
    lines = [f"{label('reader', 'name')}: {reader.name}", f"{label('reader', 'atr')}: {atr}"]
    for exchange in exchanges:
        lines += [f"{entry['dir']} {entry['hex']}" for entry in exchange["trace"]]
        lines.append(
            f"   {label('apdu', 'sw')} {exchange['sw']}  {exchange['meaning']} {exchange['meaning_en']}"
        )
    lines.append(text("words", "apdu_sent").format(count=len(exchanges)))
    emit(ctx, {"reader": reader.name, "atr": atr, "exchanges": exchanges}, lines)
