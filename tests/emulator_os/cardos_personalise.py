"""Helpers of the personalisation tests: blank stock cards, WRITE KEY bodies built
with keys derived independently from the demo key set, and the SM2 steps."""

from __future__ import annotations

from cardos_helpers import LocalMac, card_key, challenge, sm_send, tx

from apdu.command import CommandApdu
from apdu.elements import encode_pin
from apdu.sm import iv_from_challenge, wrap_command
from card_model.demo import demo_ca, demo_holder, demo_key_set, demo_stock_card_image
from card_model.errors import KeyLoadError
from card_model.issuance import card_certificate_subject
from card_model.keyload import TARGET_KEY, TARGET_PIN, check_target, wrap_secret, write_key_body
from card_model.keys import KeyRole
from card_model.profile import load_profile
from card_model.records import element_value, stored_value
from card_model.store import ImageStore
from card_model.values import CardIdCode
from emulator.card_os import CardOS
from sm_crypto.envelope import seal_private_key
from sm_crypto.sm2 import Sm2PrivateKey, Sm2PublicKey

CHUNK = 200


def stock_card(number: int = 1, *, generation: int = 3, store: ImageStore | None = None) -> CardOS:
    return CardOS(demo_stock_card_image(number, generation=generation), store=store)


def write_key_apdu(card: CardOS, p1: int, p2: int, secret: bytes, *, ktk: KeyRole = KeyRole.KTK) -> bytes:
    """GET CHALLENGE 04 and the WRITE KEY command (cryptogram + MAC with the card's KTK).
    Targets ``card_model.keyload`` refuses (a wrong P1, a short key) are built directly."""
    ch = challenge(card)
    key = card_key(card.image, ktk)
    iv = iv_from_challenge(ch, key.block_size)
    try:
        check_target(p1, secret)
    except KeyLoadError:
        plain = CommandApdu(0x80, 0xD4, p1, p2, wrap_secret(key, secret))
        return wrap_command(plain, iv, LocalMac(key)).encode()
    body = write_key_body(key, iv, p1, p2, secret)
    return bytes((0x84, 0xD4, p1, p2, len(body))) + body


def raw_card_key(card: CardOS, role: KeyRole) -> bytes:
    """The card key of ``role`` diversified from the demo masters (what WRITE KEY loads)."""
    profile = load_profile(card.image.profile)
    return demo_key_set().card_key(profile.algorithm, role, card.image.card_id[8:])


def load_key(card: CardOS, role: KeyRole) -> int:
    return tx(card, write_key_apdu(card, TARGET_KEY, role.kid, raw_card_key(card, role)))[1]


def load_all_keys(card: CardOS) -> None:
    profile = load_profile(card.image.profile)
    for spec in profile.keys:
        if spec.role is not KeyRole.KTK:
            assert load_key(card, spec.role) == 0x9000


def write_records(card: CardOS, holder_name: str = "gen3") -> None:
    """Every holder and card record the order fills (EF05 05-07, EF06, EF07) with AMK MACs."""
    profile = load_profile(card.image.profile)
    holder, data = demo_holder(holder_name)
    card_id = CardIdCode.from_bytes(card.image.card_id)
    data = type(data)(
        card_number=data.card_number,
        region_code=card_id.region,
        issue_date=data.issue_date,
        expiry_date=data.expiry_date,
        bank=data.bank,
        serial=card_id.serial,
    )
    for spec in profile.files:
        if spec.kind != "records" or spec.sfi is None:
            continue
        for record in spec.records:
            if record.element in profile.personalisation.initialised:
                continue
            raw = element_value(record.element, profile, holder, data)
            if raw is None:
                continue
            value = stored_value(record, raw)
            body = bytes((record.tag, len(value))) + value
            _, sw = sm_send(card, KeyRole.AMK, 0x04, 0xDC, record.tag, (spec.sfi << 3) | 4, body)
            assert sw == 0x9000, f"{spec.name} {record.tag:02X}: {sw:04X}"


def load_pin(card: CardOS, pin: str = "211008") -> int:
    return tx(card, write_key_apdu(card, TARGET_PIN, 0x01, encode_pin(pin)))[1]


def write_binary(card: CardOS, sfi: int, data: bytes) -> None:
    for offset in range(0, len(data), CHUNK):
        chunk = data[offset : offset + CHUNK]
        p1, p2 = (0x80 | sfi, offset) if offset < 256 else (offset >> 8, offset & 0xFF)
        _, sw = sm_send(card, KeyRole.AMK, 0x04, 0xD6, p1, p2, chunk)
        assert sw == 0x9000


def generate(card: CardOS) -> Sm2PublicKey:
    data, sw = sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x00)
    if sw == 0x6141:
        data, sw = tx(card, "00C0000041")
    assert sw == 0x9000 and len(data) == 65
    return Sm2PublicKey.from_bytes(data)


def sm2_complete(card: CardOS, holder_name: str = "gen3") -> Sm2PrivateKey:
    """Generate the signature key, import an encryption key pair, write both certificates."""
    public = generate(card)
    _, data = demo_holder(holder_name)
    profile = load_profile("gen3")
    ca = demo_ca()
    sign_cert = ca.issue_signature_certificate(public, card_certificate_subject(profile, data, "签名"))
    encrypt_key = Sm2PrivateKey.generate()
    encrypt_cert = ca.issue_encryption_certificate(
        encrypt_key.public_key(), card_certificate_subject(profile, data, "加密")
    )
    _, sw = sm_send(card, KeyRole.AMK, 0x84, 0x4A, 0x02, 0x00, seal_private_key(public, encrypt_key))
    assert sw == 0x9000
    write_binary(card, 13, sign_cert.der)
    write_binary(card, 14, encrypt_cert.der)
    return encrypt_key


def end_personalisation(card: CardOS) -> int:
    return sm_send(card, KeyRole.AMK, 0x84, 0x44, 0x01, 0x00)[1]


def progress(card: CardOS) -> tuple[int, int]:
    data, sw = tx(card, "80CADF0500")
    assert sw == 0x9000 and len(data) == 5
    return int.from_bytes(data[:4], "big"), data[4]
