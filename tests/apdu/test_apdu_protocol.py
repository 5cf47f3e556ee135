"""61xx GET RESPONSE, 6Cxx re-send, chaining, safe retry, send_raw."""

from __future__ import annotations

import io
import json

import pytest
from apdu_fakes import ScriptedTransport

from apdu.command import CommandApdu
from apdu.errors import (
    CardRemovedError,
    CardResetError,
    FileNotFound,
    PinError,
    ProtocolError,
    ReaderTimeoutError,
    TransportError,
    WrongLength,
)
from apdu.protocol import ApduProtocol, is_idempotent
from apdu.trace import Tracer

READ_EF05_ALL = CommandApdu(0x00, 0xB2, 0x01, 0x2D, le=256)


def test_plain_exchange() -> None:
    t = ScriptedTransport([("00B2032C00", "0304332E30309000")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x03, 0x2C, le=256))
    assert r.data == bytes.fromhex("0304332E3030") and r.ok and t.done()


def test_get_response_loop_concatenates() -> None:
    t = ScriptedTransport(
        [
            ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "6110"),
            ("00C0000010", "00112233445566778899AABBCCDDEEFF" + "6105"),
            ("00C0000005", "0102030405" + "9000"),
        ]
    )
    cmd = CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF"))
    r = ApduProtocol(t).send(cmd)
    assert r.data == bytes.fromhex("00112233445566778899AABBCCDDEEFF0102030405")
    assert r.sw == 0x9000 and t.done()


def test_61_00_means_256() -> None:
    t = ScriptedTransport([("0084000004", "6100"), ("00C0000000", "AA" * 256 + "9000")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=4))
    assert len(r.data) == 256


def test_get_response_keeps_logical_channel() -> None:
    t = ScriptedTransport([("01B2012C00", "6102"), ("01C0000002", "AABB9000")])
    r = ApduProtocol(t).send(CommandApdu(0x01, 0xB2, 0x01, 0x2C, le=256))
    assert r.data == b"\xaa\xbb"


def test_6cxx_resends_once_with_exact_le() -> None:
    t = ScriptedTransport([("00B2032C10", "6C06"), ("00B2032C06", "0304332E30309000")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x03, 0x2C, le=16))
    assert r.data == bytes.fromhex("0304332E3030") and t.done()


def test_6cxx_twice_is_an_error() -> None:
    t = ScriptedTransport([("00B2032C10", "6C06"), ("00B2032C06", "6C07")])
    with pytest.raises(WrongLength):
        ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x03, 0x2C, le=16))
    assert t.done()


def test_6cxx_then_61xx() -> None:
    t = ScriptedTransport(
        [
            ("00B0000010", "6C08"),
            ("00B0000008", "6108"),
            ("00C0000008", "0102030405060708" + "9000"),
        ]
    )
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=16))
    assert r.data == bytes(range(1, 9))


def test_6cxx_on_get_response() -> None:
    t = ScriptedTransport(
        [
            ("0088000110" + "00" * 16 + "00", "6110"),
            ("00C0000010", "6C08"),
            ("00C0000008", "11" * 8 + "9000"),
        ]
    )
    r = ApduProtocol(t).send(CommandApdu(0x00, 0x88, 0x00, 0x01, bytes(16), le=256))
    assert r.data == b"\x11" * 8


def test_error_sw_after_get_response() -> None:
    t = ScriptedTransport([("00B2012C00", "6102"), ("00C0000002", "6A82")])
    with pytest.raises(FileNotFound):
        ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))


def test_endless_61xx_is_bounded() -> None:
    script = [("00B2012C00", "6101")] + [("00C0000001", "AA6101")] * 300
    t = ScriptedTransport(script)
    with pytest.raises(ProtocolError, match="GET RESPONSE"):
        ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))


def test_chaining_when_card_lacks_extended_length() -> None:
    data = bytes(range(256)) * 2 + b"\x01\x02"  # 514 bytes -> 255 + 255 + 4
    t = ScriptedTransport(
        [
            ("10D60000FF" + data[:255].hex(), "9000"),
            ("10D60000FF" + data[255:510].hex(), "9000"),
            ("00D6000004" + data[510:].hex(), "9000"),
        ]
    )
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xD6, 0x00, 0x00, data))
    assert r.ok and t.done()


def test_chaining_stops_at_first_error() -> None:
    data = bytes(300)
    t = ScriptedTransport([("10D60000FF" + data[:255].hex(), "6A82")])
    with pytest.raises(FileNotFound):
        ApduProtocol(t).send(CommandApdu(0x00, 0xD6, 0x00, 0x00, data))
    assert t.done()


def test_chaining_last_block_carries_le() -> None:
    data = bytes(256)
    t = ScriptedTransport(
        [
            ("10880001FF" + data[:255].hex(), "9000"),
            ("0088000101" + "00" + "00", "6102"),
            ("00C0000002", "ABCD9000"),
        ]
    )
    r = ApduProtocol(t).send(CommandApdu(0x00, 0x88, 0x00, 0x01, data, le=256))
    assert r.data == b"\xab\xcd"


def test_sm_command_is_not_chained() -> None:
    t = ScriptedTransport([])
    with pytest.raises(ProtocolError, match="secure messaging"):
        ApduProtocol(t).send(CommandApdu(0x04, 0xD6, 0x00, 0x00, bytes(300)))


def test_extended_length_card_gets_one_apdu() -> None:
    data = bytes(300)
    t = ScriptedTransport([("00D6000000012C" + data.hex(), "9000")])
    ApduProtocol(t, extended_length=True).send(CommandApdu(0x00, 0xD6, 0x00, 0x00, data))
    assert t.done()


def test_large_le_on_short_card_uses_get_response() -> None:
    t = ScriptedTransport([("00B0000000", "6100"), ("00C0000000", "00" * 256 + "9000")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=2048))
    assert len(r.data) == 256


def test_check_false_returns_error_sw() -> None:
    t = ScriptedTransport([("00B2012C00", "6A83")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256), check=False)
    assert r.sw == 0x6A83


def test_context_inferred_for_verify() -> None:
    t = ScriptedTransport([("0020000103123456", "63C2")])
    with pytest.raises(PinError) as info:
        ApduProtocol(t).send(CommandApdu(0x00, 0x20, 0x00, 0x01, bytes.fromhex("123456")))
    assert info.value.retries_left == 2 and info.value.national_code == -51


def test_accept() -> None:
    t = ScriptedTransport([("00A40000023F00", "6F006283")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xA4, 0x00, 0x00, b"\x3f\x00"), accept={0x6283})
    assert r.sw == 0x6283


def test_idempotent_read_is_retried_after_transient_error() -> None:
    t = ScriptedTransport([("00B2012C00", ReaderTimeoutError("slow")), ("00B2012C00", "01029000")])
    r = ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))
    assert r.data == b"\x01\x02"


def test_retry_is_bounded() -> None:
    t = ScriptedTransport([("00B2012C00", TransportError("lost")), ("00B2012C00", TransportError("lost"))])
    with pytest.raises(TransportError):
        ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))
    assert t.done()


@pytest.mark.parametrize(
    "cmd_hex",
    [
        "04DC013C08" + "0102030405060708",  # UPDATE RECORD under SM
        "0020000103123456",  # VERIFY
        "0084000004",  # GET CHALLENGE
        "00C0000010",  # GET RESPONSE
    ],
)
def test_commands_that_may_have_executed_are_not_retried(cmd_hex: str) -> None:
    t = ScriptedTransport([(cmd_hex, ReaderTimeoutError("slow"))])
    with pytest.raises(ReaderTimeoutError):
        ApduProtocol(t).send(CommandApdu.decode(bytes.fromhex(cmd_hex)))
    assert t.done()


@pytest.mark.parametrize("exc", [CardRemovedError("gone"), CardResetError("reset")])
def test_removal_and_reset_are_never_retried(exc: Exception) -> None:
    t = ScriptedTransport([("00B2012C00", exc)])  # type: ignore[list-item]
    with pytest.raises(type(exc)):
        ApduProtocol(t).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))


def test_is_idempotent_table() -> None:
    assert is_idempotent(CommandApdu(0x00, 0xA4, 0x04, 0x00, b"x"))
    assert is_idempotent(CommandApdu(0x80, 0xCA, 0xDF, 0x01, le=256))
    assert not is_idempotent(CommandApdu(0x84, 0x4A, 0x00, 0x00, bytes(4)))
    assert not is_idempotent(CommandApdu(0x00, 0xC0, 0x00, 0x00, le=16))


def test_send_raw() -> None:
    t = ScriptedTransport([("00B2032C00", "6106"), ("00C0000006", "0304332E30309000")])
    assert ApduProtocol(t).send_raw(bytes.fromhex("00B2032C00")) == bytes.fromhex("0304332E30309000")


def test_send_raw_without_auto_response() -> None:
    t = ScriptedTransport([("00B2032C00", "6106")])
    assert ApduProtocol(t).send_raw(bytes.fromhex("00B2032C00"), auto_response=False) == b"\x61\x06"


def test_send_raw_rejects_malformed() -> None:
    with pytest.raises(ProtocolError):
        ApduProtocol(ScriptedTransport([])).send_raw(b"\x00\xb2")


def test_trace_redacts_get_response_data_of_internal_auth() -> None:
    t = ScriptedTransport([("0088000110" + "11" * 16, "6110"), ("00C0000010", "22" * 16 + "9000")])
    sink = io.StringIO()
    ApduProtocol(t, Tracer(transcript=sink)).send(CommandApdu(0x00, 0x88, 0x00, 0x01, b"\x11" * 16))
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert [x["hex"] for x in lines] == [
        "0088000110**(16 bytes)**",
        "6110",
        "00C0000010",
        "**(16 bytes)**9000",
    ]
    assert "22222222" not in sink.getvalue() and "11111111" not in sink.getvalue()


def test_trace_redacts_every_chained_block() -> None:
    data = bytes(300)
    t = ScriptedTransport(
        [
            ("10D4000FFF" + data[:255].hex(), "9000"),
            ("00D4000F2D" + data[255:].hex(), "9000"),
        ]
    )
    tracer = Tracer()
    ApduProtocol(t, tracer).send(CommandApdu(0x00, 0xD4, 0x00, 0x0F, data))
    assert [e.hex for e in tracer.entries if e.dir == ">>"] == [
        "10D4000FFF**(255 bytes)**",
        "00D4000F2D**(45 bytes)**",
    ]


def test_transaction_delegates() -> None:
    t = ScriptedTransport([])
    with ApduProtocol(t).transaction():
        pass
    assert t.transactions == 1
