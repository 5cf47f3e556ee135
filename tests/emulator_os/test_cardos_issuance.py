"""The SM2 issuance commands on a blank generation-3 card: GENERATE KEY PAIR,
READ PUBLIC KEY, certificates written with UPDATE BINARY, end of personalisation."""

from __future__ import annotations

from cardos_helpers import make_card, sm_send, sw_of, tx

from card_model.demo import demo_ca, demo_holder
from card_model.issuance import card_certificate_subject
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from sm_crypto.envelope import seal_private_key
from sm_crypto.sm2 import Sm2PrivateKey, Sm2PublicKey
from sm_crypto.x509 import Sm2Certificate, verify_chain

CHUNK = 200


def write_binary(card: object, sfi: int, data: bytes) -> None:
    for offset in range(0, len(data), CHUNK):
        chunk = data[offset : offset + CHUNK]
        # SFI form while the offset fits P2; the file is then current for the offset form
        p1, p2 = (0x80 | sfi, offset) if offset < 256 else (offset >> 8, offset & 0xFF)
        _, sw = sm_send(card, KeyRole.AMK, 0x04, 0xD6, p1, p2, chunk)  # type: ignore[arg-type]
        assert sw == 0x9000


def test_blank_card_issuance_flow() -> None:
    card = make_card(life_cycle=LifeCycle.BLANK)
    assert sw_of(card, "804A010041") == 0x6A88
    assert sw_of(card, "0088800020" + "00" * 32) == 0x6A88
    data, sw = sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x00)
    assert (data, sw) == (b"", 0x6141)
    public, sw = tx(card, "00C0000041")
    assert sw == 0x9000 and len(public) == 65
    assert tx(card, "804A010041") == (public, 0x9000)
    assert sw_of(card, "804A010010") == 0x6C41
    assert sw_of(card, "804A000041") == 0x6A86
    _, card_data = demo_holder("gen3")
    subject = card_certificate_subject(load_profile("gen3"), card_data, "签名")
    certificate = demo_ca().issue_signature_certificate(Sm2PublicKey.from_bytes(public), subject)
    write_binary(card, 13, certificate.der)
    read = b""
    while len(read) < len(certificate.der):
        offset = len(read)
        chunk, sw = tx(card, bytes((0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00)))
        read += chunk
    assert Sm2Certificate(read[: len(certificate.der)]) == certificate
    verify_chain(certificate, [], [demo_ca().certificate])
    # END OF PERSONALISATION also needs the encryption key pair and its certificate (§11)
    assert sm_send(card, KeyRole.AMK, 0x84, 0x44, 0x01, 0x00)[1] == 0x6985
    encrypt_key = Sm2PrivateKey.generate()
    envelope = seal_private_key(Sm2PublicKey.from_bytes(public), encrypt_key)
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, envelope)[1] == 0x9000
    encrypt_subject = card_certificate_subject(load_profile("gen3"), card_data, "加密")
    encrypt_certificate = demo_ca().issue_encryption_certificate(encrypt_key.public_key(), encrypt_subject)
    write_binary(card, 14, encrypt_certificate.der)
    assert sm_send(card, KeyRole.AMK, 0x84, 0x44, 0x01, 0x00)[1] == 0x9000
    assert card.image.life_cycle is LifeCycle.PERSONALISED
    assert sm_send(card, KeyRole.AMK, 0x04, 0xD6, 0x8D, 0x00, b"\x30")[1] == 0x6985
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x00)[1] == 0x6985


def test_update_binary_errors() -> None:
    card = make_card(life_cycle=LifeCycle.BLANK)
    assert sm_send(card, KeyRole.AMK, 0x04, 0xD6, 0x08, 0x00, b"\x00")[1] == 0x6986  # no current EF
    tx(card, "00A4000002EF0D")
    assert sm_send(card, KeyRole.AMK, 0x04, 0xD6, 0x08, 0x00, b"\x00")[1] == 0x6B00
    assert sm_send(card, KeyRole.AMK, 0x04, 0xD6, 0x07, 0xFF, b"\x00\x00")[1] == 0x6700
    assert sm_send(card, KeyRole.PUK, 0x04, 0xD6, 0x00, 0x00, b"\x00")[1] == 0x6988
    assert sm_send(card, KeyRole.AMK, 0x04, 0xD6, 0x85, 0x00, b"\x00")[1] == 0x6981


def test_generate_key_pair_wrong_p1p2_and_mac() -> None:
    card = make_card(life_cycle=LifeCycle.BLANK)
    assert sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x01)[1] == 0x6A86
    assert sm_send(card, KeyRole.PRK, 0x84, 0x4A, 0x00, 0x00)[1] == 0x6988
