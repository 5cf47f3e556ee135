"""Fuzz harness (hypothesis): every parser either succeeds or raises one of its
documented exceptions, never anything else.  Bounded: the example counts
below keep the whole file at a few seconds; raise APDU_FUZZ_EXAMPLES for a
longer run (e.g. APDU_FUZZ_EXAMPLES=200000 nightly)."""

from __future__ import annotations

import hashlib
import json
import os

from apdu_fakes import ScriptedTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu import tlv
from apdu.command import CommandApdu
from apdu.elements import ELEMENTS, CardIdentification, decode_file, decode_pin
from apdu.errors import CardError, InvalidInput, ProtocolError, SecureMessagingError
from apdu.protocol import ApduProtocol
from apdu.response import ResponseApdu
from apdu.sm import mac_input, verify_command_mac, verify_response_mac
from apdu.trace import compare_transcripts, parse_transcript

EXAMPLES = int(os.environ.get("APDU_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The later additions cover parsers whose core is fuzzed above already: fewer examples.
FUZZ_SMALL = settings(
    max_examples=max(EXAMPLES // 5, 1), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Inputs biased towards structure: random bytes, and valid encodings with
# one byte flipped / truncated / extended.
blobs = st.binary(max_size=600)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    op = draw(st.sampled_from(["flip", "cut", "grow", "none"]))
    if op == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    elif op == "cut" and data:
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif op == "grow":
        data += draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


valid_tlv = st.builds(
    lambda inner: bytes([0x6F, len(inner)]) + inner,
    st.binary(max_size=40).map(lambda v: bytes([0x9F, 0x08, len(v)]) + v),
)
valid_records = st.lists(st.tuples(st.integers(1, 0x30), st.binary(max_size=32)), max_size=5).map(
    tlv.encode_records
)


@FUZZ
@given(st.one_of(blobs, mutated(st.binary(min_size=4, max_size=300))))
def test_command_decode(data: bytes) -> None:
    try:
        cmd = CommandApdu.decode(data)
    except ProtocolError:
        return
    assert cmd.encode() == data


@FUZZ
@given(blobs)
def test_response_decode(data: bytes) -> None:
    try:
        ResponseApdu.decode(data).check()
    except (ProtocolError, CardError):
        pass


@FUZZ
@given(st.one_of(blobs, mutated(valid_tlv)), st.booleans())
def test_tlv_parse(data: bytes, skip_padding: bool) -> None:
    try:
        objects = tlv.parse(data, skip_padding=skip_padding)
    except ProtocolError:
        return
    if not skip_padding:
        assert tlv.encode(objects) == data or any(
            b >= 0x81 for b in data
        )  # non-minimal lengths re-encode shorter


@FUZZ_SMALL
@given(st.one_of(blobs, mutated(valid_tlv)))
def test_tlv_parse_one(data: bytes) -> None:
    try:
        obj = tlv.parse_one(data)
    except ProtocolError:
        return
    assert tlv.parse_one(tlv.encode([obj])) == obj


@FUZZ_SMALL
@given(st.one_of(blobs, mutated(valid_records)), st.one_of(st.none(), st.integers(0, 0xFF)))
def test_record_parse(data: bytes, expected_tag: int | None) -> None:
    try:
        tag, value = tlv.parse_record(data, expected_tag)
    except ProtocolError:
        return
    assert tlv.encode_record(tag, value) == data
    assert expected_tag in (None, tag)


@FUZZ
@given(st.one_of(blobs, mutated(valid_records)))
def test_records_parse(data: bytes) -> None:
    try:
        records = tlv.parse_records(data)
    except ProtocolError:
        return
    assert tlv.encode_records(records) == data


@FUZZ
@given(st.sampled_from(sorted(ELEMENTS)), st.binary(max_size=90))
def test_element_decoders(tag: int, data: bytes) -> None:
    elem = ELEMENTS[tag]
    try:
        value = elem.decode(data)
    except ProtocolError:
        return
    assert elem.decode(elem.encode(value)) == value


@FUZZ
@given(st.sampled_from(["EF05", "EF06", "EF07"]), st.one_of(blobs, mutated(valid_records)))
def test_decode_file(file: str, data: bytes) -> None:
    try:
        decode_file(file, data)
    except ProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=8), st.text(max_size=40))
def test_pin_and_card_id(data: bytes, text: str) -> None:
    try:
        decode_pin(data)
    except ProtocolError:
        pass
    try:
        CardIdentification.from_hex(text)
    except InvalidInput:
        pass


@FUZZ
@given(blobs)
def test_sm_mac_input(data: bytes) -> None:
    try:
        mac_input(CommandApdu.decode(data))
    except ProtocolError:
        pass


class _HashMac:
    """A MAC provider for fuzzing the SM framing (not the MAC algorithm)."""

    def mac(self, message: bytes, iv: bytes) -> bytes:
        return hashlib.sha256(iv + message).digest()[:16]


@FUZZ_SMALL
@given(st.one_of(blobs, mutated(st.binary(min_size=4, max_size=60))), st.booleans())
def test_sm_mac_checks(data: bytes, include_sw: bool) -> None:
    """Card side (a received SM command) and terminal side (a MACed response)."""
    try:
        verify_command_mac(CommandApdu.decode(data), bytes(16), _HashMac())
    except (ProtocolError, SecureMessagingError):
        pass
    try:
        payload = verify_response_mac(ResponseApdu.decode(data), bytes(16), _HashMac(), include_sw=include_sw)
    except (ProtocolError, SecureMessagingError):
        return
    assert payload == data[: len(data) - 6]


hex_texts = st.text(alphabet="0123456789ABCDEFabcdefG .*()bytes", max_size=48)


@FUZZ_SMALL
@given(st.lists(st.tuples(st.sampled_from([">>", "<<"]), hex_texts), max_size=4))
def test_transcript_hex(lines: list[tuple[str, str]]) -> None:
    """Well-formed JSON with arbitrary hex text: parsed, or a ProtocolError."""
    text = [json.dumps({"dir": d, "hex": h}) for d, h in lines]
    try:
        entries = parse_transcript(text)
    except ProtocolError:
        return
    assert compare_transcripts(entries, entries) == []


@FUZZ
@given(st.lists(st.text(max_size=80), max_size=4))
def test_transcript_parse(lines: list[str]) -> None:
    try:
        parse_transcript(lines)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=6))
def test_protocol_against_a_hostile_card(answers: list[bytes]) -> None:
    """Whatever a card answers (61xx storms, 6Cxx, garbage), ``send`` returns
    or raises a documented error."""

    class Hostile(ScriptedTransport):
        def transmit(self, apdu: bytes) -> bytes:
            self.sent.append(apdu)
            return answers[min(len(self.sent) - 1, len(answers) - 1)]

    try:
        ApduProtocol(Hostile([])).send(CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256))
    except (ProtocolError, CardError):
        pass
