"""READ BINARY of the certificate files and their content."""

from __future__ import annotations

import pytest
from cardos_helpers import make_card, sw_of, tx

from card_model.demo import demo_ca
from sm_crypto.x509 import Sm2Certificate, verify_chain


def _read_file(card: object, sfi: int, size: int) -> bytes:
    out = b""
    while len(out) < size:
        offset = len(out)
        if offset < 256:
            data, sw = tx(card, bytes((0x00, 0xB0, 0x80 | sfi, offset, 0x00)))
        else:
            data, sw = tx(card, bytes((0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00)))
        assert sw == 0x9000
        out += data
    return out


def _der_length(raw: bytes) -> int:
    assert raw[0] == 0x30 and raw[1] == 0x82
    return 4 + int.from_bytes(raw[2:4], "big")


@pytest.mark.parametrize(("sfi", "usage"), [(13, "digital_signature"), (14, "key_encipherment")])
def test_certificates_verify_against_demo_anchor(sfi: int, usage: str) -> None:
    card = make_card()
    content = _read_file(card, sfi, 2048)
    assert len(content) == 2048
    certificate = Sm2Certificate(content[: _der_length(content)])
    assert content[_der_length(content) :] == bytes(2048 - _der_length(content))
    path = verify_chain(certificate, [], [demo_ca().certificate], required_key_usage=(usage,))
    assert path[0] == certificate
    assert "X00000019" in certificate.subject_text


def test_sign_certificate_holds_the_card_public_key() -> None:
    card = make_card()
    content = _read_file(card, 13, 600)
    certificate = Sm2Certificate(content[: _der_length(content)])
    public, sw = tx(card, "804A010041")
    assert sw == 0x9000 and certificate.public_key.to_bytes() == public


def test_read_binary_offsets_and_end_of_file() -> None:
    card = make_card()
    assert tx(card, "00A4000002EF0D")[1] == 0x9000
    data, sw = tx(card, "00B0000010")
    assert sw == 0x9000 and len(data) == 16 and data[0] == 0x30
    data, sw = tx(card, "00B007F810")
    assert sw == 0x6282 and len(data) == 8  # only 8 bytes left
    data, sw = tx(card, "00B007F800")
    assert sw == 0x9000 and len(data) == 8  # Le 00: what is there
    assert sw_of(card, "00B0080001") == 0x6B00
    assert sw_of(card, "00B07FFF01") == 0x6B00


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00B0000000", 0x6986),  # no current EF
        ("00B0850000", 0x6981),  # EF05 is a record file
        ("00B09F0000", 0x6A82),  # SFI 31 absent
        ("00B0E00000", 0x6A86),  # P1 bits 7-6 set with SFI form
        ("00B08D000100", 0x6700),  # data field
    ],
)
def test_read_binary_errors(apdu: str, sw: int) -> None:
    assert sw_of(make_card(), apdu) == sw
