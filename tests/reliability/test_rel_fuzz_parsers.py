"""Fuzzing the parsers: command / response APDUs (terminal and card side,
differentially), BER-TLV and the simple records, the data-element codecs,
the national interface's message parser and its text formats (file
addresses, card information, write data, security-module steps).

Property of every target: the parser returns a value that re-encodes to
its input (where an encoding exists), or raises one of its documented
exceptions (:class:`apdu.errors.SscardError` subclasses); never anything
else (ValueError, RecursionError, KeyError ...)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rel_fuzz import FUZZ, blobs, byte, fuzz, mutated, national_messages

from apdu import tlv
from apdu.command import CommandApdu
from apdu.elements import ELEMENTS, decode_file
from apdu.errors import ProtocolError, SscardError
from apdu.protocol import ApduProtocol
from apdu.response import ResponseApdu
from apdu.transport import ProtocolName
from card_model.keys import Algorithm, KeyRole
from emulator.card_os.command import parse_command
from emulator.card_os.sw import SW_WRONG_LENGTH, CardStatus
from terminal.flows.generic import parse_card_info, parse_file_address, parse_write_data
from terminal.keysource.hsm import HsmRequest, key_address, parse_answer
from terminal.service.national_protocol import function_specs, parse_call, requested_function

# -- APDUs ----------------------------------------------------------------------------------------


@st.composite
def valid_commands(draw: st.DrawFn) -> bytes:
    extended = draw(st.booleans())
    data = draw(st.binary(max_size=300 if extended else 255))
    le = draw(st.none() | st.integers(1, 65536 if extended else 256))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended or None).encode()


command_bytes = st.one_of(blobs, mutated(valid_commands()))


@FUZZ
@given(command_bytes)
def test_command_decode_and_the_card_agree(raw: bytes) -> None:
    """``CommandApdu.decode`` (terminal) and ``parse_command`` (card) accept the
    same bytes and read the same fields; a rejected APDU is ProtocolError / 6700."""
    try:
        cmd = CommandApdu.decode(raw)
    except ProtocolError:
        cmd = None
    try:
        card_side = parse_command(raw)
    except CardStatus as status:
        assert status.sw == SW_WRONG_LENGTH
        card_side = None
    assert (cmd is None) == (card_side is None), raw.hex()
    if cmd is not None and card_side is not None:
        assert cmd.encode() == raw
        assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le) == (
            card_side.cla,
            card_side.ins,
            card_side.p1,
            card_side.p2,
            card_side.data,
            card_side.le,
        )


@FUZZ
@given(blobs, st.sampled_from([None, "pin", "key"]), st.frozensets(st.integers(0, 0xFFFF), max_size=3))
def test_response_decode_and_check(raw: bytes, context: str | None, accept: frozenset[int]) -> None:
    try:
        response = ResponseApdu.decode(raw)
    except ProtocolError:
        assert len(raw) < 2
        return
    assert response.encode() == raw
    try:
        checked = response.check(context, accept=accept)  # type: ignore[arg-type]
    except SscardError as exc:
        assert exc.sw == response.sw
        # The response body never leaks into the message (short bodies can
        # collide with the status word's own hex by chance, so only check 4+).
        if len(raw) - 2 >= 4:
            assert raw[:-2].hex() not in str(exc).lower()
        return
    assert checked is response


class _HostileCard:
    """A transport whose card answers from a script (61xx storms, 6Cxx loops, garbage)."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.sent = 0

    reader = "hostile"
    atr = bytes.fromhex("3B00")
    protocol: ProtocolName = "T0"
    connected = True

    def connect(self) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def reconnect(self, reset: bool = False) -> None:
        return None

    def transaction(self):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        return nullcontext()

    def transmit(self, apdu: bytes) -> bytes:
        self.sent += 1
        return self.answers[min(self.sent - 1, len(self.answers) - 1)]


answers = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.sampled_from([0x61, 0x6C, 0x90, 0x63, 0x69, 0x6A]), byte).map(bytes),
    st.tuples(st.binary(max_size=300), st.sampled_from([b"\x61\x00", b"\x6c\x10", b"\x90\x00"])).map(
        lambda t: t[0] + t[1]
    ),
)


@fuzz(0.5)
@given(st.lists(answers, min_size=1, max_size=8), st.booleans())
def test_protocol_against_a_hostile_card(script: list[bytes], case4: bool) -> None:
    card = _HostileCard(script)
    internal_auth = CommandApdu(0x00, 0x88, 0x00, 0x01, bytes(16), 256)
    command = internal_auth if case4 else CommandApdu(0x00, 0xB2, 1, 0x2C, le=256)
    try:
        ApduProtocol(card).send(command)
    except SscardError:
        pass
    assert card.sent <= 305  # the GET RESPONSE / re-send loops are bounded


# -- TLV and records ------------------------------------------------------------------------------

valid_tlv = st.recursive(
    st.tuples(st.sampled_from([0x84, 0x9F08, 0x5F20, 0x50, 0xC1]), st.binary(max_size=40)).map(
        lambda t: tlv.Tlv(t[0], t[1]).encode()
    ),
    lambda inner: st.tuples(st.sampled_from([0x6F, 0xA5, 0xBF0C, 0x70]), st.lists(inner, max_size=3)).map(
        lambda t: tlv.encode_tag(t[0]) + tlv.encode_length(sum(map(len, t[1]))) + b"".join(t[1])
    ),
    max_leaves=10,
)
deep_tlv = st.integers(1, 40).map(lambda n: b"\x6f\x81\x00" * 0 + b"".join([b"\x6f"] * 0) + _nest(n))


def _nest(depth: int) -> bytes:
    data = b"\x84\x01\x00"
    for _ in range(depth):
        data = b"\x6f" + tlv.encode_length(len(data)) + data
    return data


@FUZZ
@given(st.one_of(blobs, mutated(valid_tlv), deep_tlv), st.booleans())
def test_ber_tlv(data: bytes, skip_padding: bool) -> None:
    try:
        objects = tlv.parse(data, skip_padding=skip_padding)
    except ProtocolError:
        return
    for obj in objects:
        # a constructed value keeps the padding it was read with: re-read it the same way
        (again,) = tlv.parse(obj.encode(), skip_padding=skip_padding)
        assert again.tag == obj.tag and again.value == obj.value
        for child in obj.iter():
            assert child.encode()
    if not skip_padding and all(b < 0x81 for b in data):
        assert tlv.encode(objects) == data


@FUZZ
@given(
    st.one_of(
        blobs,
        mutated(
            st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=40)), max_size=6).map(
                tlv.encode_records
            )
        ),
    )
)
def test_simple_records(data: bytes) -> None:
    try:
        records = tlv.parse_records(data)
    except ProtocolError:
        return
    assert tlv.encode_records(records) == data
    if len(records) == 1:
        assert tlv.parse_record(data) == records[0]


@FUZZ
@given(st.sampled_from(sorted(ELEMENTS)), st.one_of(st.binary(max_size=260), st.text(max_size=60)))
def test_element_codecs(tag: int, value: bytes | str) -> None:
    element = ELEMENTS[tag]
    if isinstance(value, bytes):
        try:
            decoded = element.decode(value)
        except ProtocolError:
            return
        assert element.decode(element.encode(decoded)) == decoded
        return
    try:
        element.encode(value)
    except SscardError as exc:
        assert exc.national_code in (-14, -41, -42, -23, -20)


@FUZZ
@given(st.sampled_from(["EF05", "EF06", "EF07"]), mutated(st.binary(max_size=200)))
def test_decode_file(file: str, data: bytes) -> None:
    try:
        decode_file(file, data)
    except ProtocolError:
        pass


# -- the national interface -------------------------------------------------------------------------


@FUZZ
@given(national_messages())
def test_national_message_parser(raw: str | bytes) -> None:
    name = requested_function(raw)
    assert name is None or (isinstance(name, str) and len(name) <= 60)
    try:
        call = parse_call(raw)
    except SscardError as exc:
        assert exc.national_code in (-13, -14, -41, -42)
        return
    assert call.spec.name in function_specs()
    for arg, value in call.args.items():
        assert isinstance(value, (int, str)) and not isinstance(value, bool), arg
        if isinstance(value, str):
            value.encode("utf-8")


address_parts = st.one_of(
    st.sampled_from(["3F00EF06", "3F00EF07", "3F00", "3F00EF06EF07", "EF06", "3f00ef06", "3F00EF0G", ""]),
    st.text(alphabet=string.hexdigits + "|$ ", max_size=12),
)


@st.composite
def file_addresses(draw: st.DrawFn) -> str:
    path = draw(address_parts)
    tags = draw(
        st.lists(
            st.one_of(st.sampled_from(["08", "09", "4E", "00", "FF", "8", "0g", ""]), st.text(max_size=3)),
            max_size=6,
        )
    )
    end = draw(st.sampled_from(["|$", "$", "|", "", "|$|", "|$$"]))
    return path + "|" + "|".join(tags) + end


@FUZZ
@given(st.one_of(file_addresses(), st.text(max_size=40)))
def test_national_file_address(address: str) -> None:
    try:
        parsed = parse_file_address(address)
    except SscardError as exc:
        assert exc.national_code in (-14, -41, -42)
        return
    assert parse_file_address(parsed.text()) == parsed
    assert parsed.tags and all(0 < t < 0xFF for t in parsed.tags)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=60),
        st.tuples(st.text(alphabet=string.hexdigits, min_size=30, max_size=34), st.text(max_size=12)).map(
            lambda t: f"{t[0]}|{t[1]}|"
        ),
    )
)
def test_national_card_info(card_info: str) -> None:
    try:
        card_id, number = parse_card_info(card_info)
    except SscardError as exc:
        assert exc.national_code in (-14, -20, -23, -41, -42)
        return
    assert len(card_id) == 32 and number


@FUZZ
@given(st.text(max_size=80), st.integers(0, 6))
def test_national_write_data(data: str, count: int) -> None:
    try:
        values = parse_write_data(data, count)
    except SscardError as exc:
        assert exc.national_code == -14
        return
    assert len(values) == count and "|".join(values) + "|" == data


@st.composite
def hsm_requests(draw: st.DrawFn) -> str:
    algorithm = draw(st.sampled_from(list(Algorithm)))
    role = draw(st.sampled_from(list(KeyRole)))
    fields = [
        draw(st.sampled_from(["03", "01", "02", "3", ""])),
        key_address(algorithm, role) if draw(st.booleans()) else draw(st.text(max_size=5)),
        draw(st.binary(max_size=10)).hex().upper(),
        draw(st.binary(max_size=40)).hex(),
    ]
    fields += [draw(st.binary(max_size=30)).hex()] * draw(st.integers(0, 2))
    return draw(
        st.one_of(
            st.just("|".join(fields) + "|"),
            mutated(st.just("|".join(fields).encode())).map(lambda b: b.decode("latin-1")),
        )
    )


@fuzz(0.5)
@given(hsm_requests(), st.text(max_size=60))
def test_hsm_step_texts(request_text: str, answer: str) -> None:
    try:
        request = HsmRequest.parse(request_text)
    except SscardError as exc:
        assert exc.national_code in (-14, -41, -42, -24, -2202, -2203)
        return
    assert HsmRequest.parse(request.to_text()) == request
    try:
        parse_answer(answer, request)
    except SscardError as exc:
        assert exc.national_code < 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"function": "iReadCardBas", "iType": "²"}', -14),  # str.isdigit() but not int()
        ('{"function": "iReadCardBas", "iType": "--1"}', -14),
        ('{"function": "iReadCardBas", "iType": "١"}', -14),  # Arabic-Indic one: not a national number
        ('{"function": "iReadCardBas", "iType": "' + "9" * 5000 + '"}', -14),  # beyond int()'s digit limit
        ("[" * 50_000, -14),  # deeper than the JSON parser's recursion limit
        ('{"a":' * 5000 + "1" + "}" * 5000, -14),
        (
            '{"function": "iReadCard", "iType": 1, "iAuthType": 0, "pCardInfo": "\\ud800", "pFileAddr": "x"}',
            -41,
        ),
    ],
)
def test_national_parser_regressions(raw: str, code: int) -> None:
    """Inputs the fuzzer found: each is refused with its national code, never
    a ValueError / RecursionError from deep inside."""
    with pytest.raises(SscardError) as info:
        parse_call(raw)
    assert info.value.national_code == code
    assert requested_function(raw) in (None, "iReadCardBas", "iReadCard")
    assert parse_call('{"function": "iReadCardBas", "iType": " 3 "}').int_arg("iType") == 3


def test_padding_inside_a_constructed_value_stays_readable() -> None:
    """Found by the long fuzz run: 6F 04 00 84 01 00 read with padding allowed
    keeps the 00 inside 6F's value; re-reading needs padding allowed too."""
    data = bytes.fromhex("6F0400840100")
    (obj,) = tlv.parse(data, skip_padding=True)
    assert obj.value == bytes.fromhex("00840100") and [c.tag for c in obj.children] == [0x84]
    assert tlv.parse(obj.encode(), skip_padding=True)[0].value == obj.value
    with pytest.raises(ProtocolError):
        tlv.parse(data)
