"""Tracer, redaction policy and golden transcripts."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from apdu_fakes import FunctionCard

from apdu.command import CommandApdu
from apdu.errors import ProtocolError
from apdu.inprocess import InProcessTransport
from apdu.protocol import ApduProtocol
from apdu.redaction import Redactor, load_policy, render_hex
from apdu.trace import (
    Tracer,
    TranscriptEntry,
    compare_transcripts,
    load_transcript,
    parse_transcript,
)

GOLDEN = Path(__file__).parent / "vectors" / "golden_session.jsonl"
SSN = b"110102197305211008"
NAME = "张三".encode("gbk").ljust(30, b" ")
PHONE = b"13800138000".ljust(20, b" ")
SECRET_MARKERS = [
    SSN.hex().upper(),
    NAME[:4].hex().upper(),
    PHONE[:6].hex().upper(),
    "975310",
    "A1A2A3A4",
]

ANSWERS = {
    "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00": "6F17840F7378312E73682EC9E7BBE1B1A3D5CFA5049F0801039000",
    "00B2012D00": "0304332E3030070958303030303030313990 00",
    "0084000008": "A1A2A3A4A5A6A7A89000",
    "0082000310" + "77" * 16: "9000",
    "00B2083500": "0812" + SSN.hex() + "091E" + NAME.hex() + "9000",
    "00A4000002EF07": "9000",
    "00B2210400": "2114" + PHONE.hex() + "9000",
    "00A4000002EF05": "9000",
    "00B2070400": "07095830303030303031399000",
    "0020000103975310": "63C2",
    "80CADF0200": "0203009000",
    "0084000004": "A1A2A3A49000",
    "04DC213C1A2114" + PHONE.hex() + "DEADBEEF": "9000",
    "8444000004CAFEBABE": "9000",
    "04D68D0009AABBCCDDEE01020304": "9000",
    "80FA050018" + "00" * 16 + "8444000004800000": "A1A2A3A49000",
    "801A0003080000000012345678": "9000",
}


def card_process(apdu: bytes) -> bytes:
    return bytes.fromhex(ANSWERS[apdu.hex().upper()].replace(" ", ""))


def run_session(tracer: Tracer) -> None:
    proto = ApduProtocol(InProcessTransport(FunctionCard(card_process)), tracer)
    proto.transport.connect()
    send = proto.send
    send(
        CommandApdu(
            0x00,
            0xA4,
            0x04,
            0x00,
            bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF"),
            le=256,
        )
    )
    send(CommandApdu(0x00, 0xB2, 0x01, 0x2D, le=256))
    send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8))
    send(CommandApdu(0x00, 0x82, 0x00, 0x03, b"\x77" * 16))
    send(CommandApdu(0x00, 0xB2, 0x08, 0x35, le=256))
    send(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\xef\x07"))
    send(CommandApdu(0x00, 0xB2, 0x21, 0x04, le=256))
    send(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\xef\x05"))
    send(CommandApdu(0x00, 0xB2, 0x07, 0x04, le=256))
    send(CommandApdu(0x00, 0x20, 0x00, 0x01, bytes.fromhex("975310")), check=False)
    send(CommandApdu(0x80, 0xCA, 0xDF, 0x02, le=256))
    send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=4))
    send(
        CommandApdu(
            0x04,
            0xDC,
            0x21,
            0x3C,
            bytes.fromhex("2114") + PHONE + bytes.fromhex("DEADBEEF"),
        )
    )
    send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=4))
    send(CommandApdu(0x84, 0x44, 0x00, 0x00, bytes.fromhex("CAFEBABE")))
    send(CommandApdu(0x04, 0xD6, 0x8D, 0x00, bytes.fromhex("AABBCCDDEE01020304")))
    send(CommandApdu(0x80, 0xFA, 0x05, 0x00, bytes(16) + bytes.fromhex("8444000004800000")))
    send(CommandApdu(0x80, 0x1A, 0x00, 0x03, bytes.fromhex("0000000012345678")))


def test_golden_session(caplog: pytest.LogCaptureFixture) -> None:
    sink = io.StringIO()
    with caplog.at_level(logging.DEBUG, logger="sscard.apdu"):
        run_session(Tracer(transcript=sink))
    actual = parse_transcript(sink.getvalue().splitlines())
    assert compare_transcripts(load_transcript(GOLDEN), actual) == []
    for marker in SECRET_MARKERS:
        assert marker not in sink.getvalue()
        assert marker not in caplog.text.replace(" ", "")
    assert "**(16 bytes)**" in caplog.text


def test_transcript_file_path(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with Tracer(transcript=path) as tracer:
        run_session(tracer)
    entries = load_transcript(path)
    assert len(entries) == len(load_transcript(GOLDEN))
    assert all(e.t >= 0 for e in entries)
    assert entries[-1].t >= entries[0].t


def test_compare_reports_differences() -> None:
    golden = load_transcript(GOLDEN)
    tampered = list(golden)
    tampered[1] = TranscriptEntry("<<", "6A82", False)
    tampered[2] = TranscriptEntry("<<", tampered[2].hex, False)
    diffs = compare_transcripts(golden, tampered[:-1])
    assert any(d.startswith("#1") for d in diffs)
    assert any("direction" in d for d in diffs)
    assert any(d.startswith("length") for d in diffs)


def test_compare_wildcards() -> None:
    exp = [TranscriptEntry(">>", "0088000110....", False)]
    assert compare_transcripts(exp, [TranscriptEntry(">>", "0088000110ABCD", False)]) == []
    assert compare_transcripts(exp, [TranscriptEntry(">>", "0088000110ABCDEF", False)]) != []
    assert compare_transcripts(exp, [TranscriptEntry(">>", "0088000110**(2 bytes)**", True)]) != []
    assert (
        compare_transcripts(
            [TranscriptEntry(">>", "00 a4", False)],
            [TranscriptEntry(">>", "00A4", False)],
        )
        == []
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "object"),
        ('{"dir": "<>", "hex": "00"}', "dir"),
        ('{"dir": ">>", "hex": 5}', "hex"),
        ('{"dir": ">>", "hex": "00A40000", "t": "x"}', "redacted"),
        ('{"dir": "<<", "hex": "90000"}', "odd number of hex digits at offset 4"),
        ('{"dir": "<<", "hex": "90 0 0"}', "odd number of hex digits at offset 3"),
        ('{"dir": "<<", "hex": "6F0G9000"}', "not hexadecimal at offset 3"),
        ('{"dir": "<<", "hex": "**(3 bytes)9000"}', "not hexadecimal at offset 0"),
        ('{"dir": "<<", "hex": "**(x bytes)**9000"}', "not hexadecimal at offset 0"),
        ('{"dir": ">>", "hex": "00A400"}', "command header"),
        ('{"dir": "<<", "hex": "90"}', "status word"),
        ('{"dir": "<<", "hex": ""}', "status word"),
    ],
)
def test_parse_errors(line: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_transcript([line])


def test_parse_accepts_spaces_wildcards_and_markers() -> None:
    lines = [
        json.dumps({"dir": ">>", "hex": "00 20 00 01 03 **(3 bytes)**"}),
        json.dumps({"dir": "<<", "hex": "**(2 bytes)**"}),  # a marker counts its bytes
        json.dumps({"dir": "<<", "hex": ".. .. 90 00"}),
    ]
    entries = parse_transcript(lines)
    assert [e.redacted for e in entries] == [True, True, False]


def test_parse_skips_comments_and_blank_lines() -> None:
    entries = parse_transcript(["# c", "", json.dumps({"dir": "<<", "hex": "9000"})])
    assert entries == [TranscriptEntry("<<", "9000", False, 0.0)]


# -- redaction policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "command_hidden", "response_hidden"),
    [
        (CommandApdu(0x00, 0x20, 0x00, 0x01, b"\x12\x34\x56"), True, False),
        (CommandApdu(0x80, 0x5E, 0x01, 0x01, bytes(7)), True, False),
        (CommandApdu(0x84, 0x5E, 0x00, 0x81, bytes(7)), True, False),
        (CommandApdu(0x84, 0x24, 0x00, 0x01, bytes(4)), True, False),
        (CommandApdu(0x00, 0x82, 0x00, 0x03, bytes(16)), True, True),
        (CommandApdu(0x00, 0x88, 0x00, 0x01, bytes(16)), True, True),
        (CommandApdu(0x00, 0x84, 0x00, 0x00, le=4), False, True),
        (CommandApdu(0x80, 0xFA, 0x00, 0x00, bytes(8)), True, True),
        (CommandApdu(0x84, 0xD4, 0x00, 0x03, bytes(36)), True, False),
        (CommandApdu(0x84, 0x4A, 0x02, 0x00, bytes(214)), True, False),  # import key pair
        (CommandApdu(0x84, 0x4A, 0x00, 0x00, bytes(4)), True, False),  # generate: MAC only
        (CommandApdu(0x80, 0x4A, 0x01, 0x00, le=0x41), True, False),  # no data; public key shown
        (CommandApdu(0x00, 0xB2, 0x01, 0x0C, le=256), False, True),  # financial PAN record
        (CommandApdu(0x00, 0xB2, 0x08, 0x34, le=256), False, True),
        (CommandApdu(0x00, 0xB2, 0x20, 0x3D, le=256), False, True),
        (
            CommandApdu(0x00, 0xB2, 0x08, 0x04, le=256),
            False,
            True,
        ),  # current EF unknown
        (CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256), False, False),
        (CommandApdu(0x00, 0xB0, 0x8D, 0x00, le=256), False, False),
        (CommandApdu(0x04, 0xDC, 0x20, 0x3C, bytes(84)), True, False),
        (CommandApdu(0x00, 0xD6, 0x00, 0x00, b"x", sensitive=True), True, True),
    ],
)
def test_policy(cmd: CommandApdu, command_hidden: bool, response_hidden: bool) -> None:
    policy = load_policy()
    assert policy.command_hidden(cmd, None) == command_hidden
    assert policy.response_hidden(cmd, None) == response_hidden


def test_current_ef_tracking() -> None:
    r = Redactor()
    read_current = CommandApdu(0x00, 0xB2, 0x07, 0x04, le=256)
    assert r.response_hidden(read_current)  # unknown current EF: treated as personal
    r.observe(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\xef\x05"), 0x9000)
    assert not r.response_hidden(read_current)
    r.observe(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\xef\x06"), 0x6A82)  # failed: no change
    assert not r.response_hidden(read_current)
    r.observe(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\xef\x06"), 0x9000)
    assert r.response_hidden(read_current)
    r.observe(CommandApdu(0x00, 0xA4, 0x04, 0x00, b"sx1"), 0x9000)
    assert r.current_ef is None


def test_response_without_known_command_is_hidden() -> None:
    r = Redactor()
    assert render_hex(r.response(None, b"\x01\x02\x90\x00"), "") == "**(2 bytes)**9000"
    assert render_hex(r.response(None, b"\x90"), "") == "90"


def test_tracer_never_logs_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sscard.apdu"):
        run_session(Tracer())
    assert caplog.text == ""
