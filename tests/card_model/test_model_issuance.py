"""Software issuance and the card image format."""

from __future__ import annotations

import json

import pytest

from apdu.elements import decode_file
from apdu.tlv import encode_record
from card_model.demo import (
    demo_blank_card_image,
    demo_ca,
    demo_card_image,
    demo_holder,
    demo_key_set,
    demo_psam_image,
    make_demo_ca_certificate,
)
from card_model.errors import CardModelError, ImageError, IssuanceError
from card_model.image import CardImage
from card_model.issuance import issue_card
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from sm_crypto.sm2 import Sm2PrivateKey
from sm_crypto.x509 import Sm2Certificate


def _records(image: CardImage, fid: int) -> bytes:
    records = image.record_files[fid].records
    return b"".join(encode_record(tag, records[tag]) for tag in sorted(records))


@pytest.mark.parametrize("generation", [3, 2, 1])
def test_demo_images_are_personalised(generation: int) -> None:
    image = demo_card_image(generation)
    holder, card = demo_holder(f"gen{generation}")
    profile = load_profile(f"gen{generation}")
    assert image.life_cycle is LifeCycle.PERSONALISED
    assert image.pin.value == holder.ssn.initial_pin and image.pin.initial and image.pin.tries_left == 3
    assert image.card_id == card.card_id.to_bytes()
    for spec in profile.keys:
        key = image.keys[spec.kid]
        assert key.value == demo_key_set().card_key(profile.algorithm, spec.role, card.serial)
        assert key.algorithm is profile.algorithm and key.tries_left == 5
    assert decode_file("EF06", _records(image, 0xEF06))["ssn"] == holder.ssn.value
    assert decode_file("EF05", _records(image, 0xEF05))["spec_version"] == profile.spec_version
    assert (image.sm2_sign_key is not None) == (generation == 3)


def test_demo_image_is_deterministic_and_a_copy() -> None:
    first, second = demo_card_image(), demo_card_image()
    assert first is not second and first.to_json() == second.to_json()
    first.pin.tries_left = 0
    assert demo_card_image().pin.tries_left == 3
    assert demo_psam_image().to_json() == demo_psam_image().to_json()


def test_demo_ca_certificate_is_reproducible_from_its_key() -> None:
    made = make_demo_ca_certificate()
    stored = demo_ca().certificate
    assert made.public_key.to_bytes() == stored.public_key.to_bytes()
    assert made.subject_text == stored.subject_text


def test_blank_image_has_no_sm2_material() -> None:
    image = demo_blank_card_image()
    assert image.life_cycle is LifeCycle.BLANK and image.sm2_sign_key is None
    assert bytes(image.binary_files[0xEF0D].content) == bytes(2048)


def test_gen3_issuance_needs_a_ca() -> None:
    holder, card = demo_holder()
    with pytest.raises(IssuanceError):
        issue_card(load_profile("gen3"), holder, card, demo_key_set())


def test_issuance_with_given_sm2_key() -> None:
    holder, card = demo_holder()
    key = Sm2PrivateKey.generate()
    image = issue_card(load_profile("gen3"), holder, card, demo_key_set(), ca=demo_ca(), sm2_sign_key=key)
    der = bytes(image.binary_files[0xEF0D].content)
    certificate = Sm2Certificate(der[: 4 + int.from_bytes(der[2:4], "big")])
    assert certificate.public_key.to_bytes() == key.public_key().to_bytes()


def test_image_json_round_trip() -> None:
    image = demo_card_image()
    image.revision = 7
    image.blocked_from = LifeCycle.ACTIVE
    again = CardImage.from_json(image.to_json())
    assert again == image
    text = repr(image)
    assert image.pin.value not in text and image.keys[1].value.hex() not in text.lower()


def _mutated(change: str) -> bytes:
    doc = json.loads(demo_card_image().to_json())
    exec(change, {"doc": doc})
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "change",
    [
        "doc['version'] = 2",
        "doc['kind'] = 'psam'",
        "doc['life_cycle'] = 9",
        "doc['pin']['value'] = '12ab56'",
        "doc['pin']['tries_left'] = 9",
        "doc['keys'][0]['value'] = 'zz'",
        "doc['keys'][0]['tries_left'] = -1",
        "doc['keys'][1]['kid'] = 1",
        "doc['keys'][0]['role'] = 'XYZ'",
        "doc['card_id'] = '00'",
        "del doc['sm2']",
        "doc['revision'] = True",
        "doc['record_files']['EF05']['01'] = 'Q'",
    ],
)
def test_corrupt_images_rejected(change: str) -> None:
    with pytest.raises(ImageError):
        CardImage.from_json(_mutated(change))


def test_non_json_image() -> None:
    with pytest.raises(ImageError):
        CardImage.from_json(b"\x00not json")
    with pytest.raises(ImageError):
        CardImage.from_json(b"[]")


def test_demo_argument_errors() -> None:
    with pytest.raises(CardModelError):
        demo_card_image(4)
    with pytest.raises(CardModelError):
        demo_card_image(3, holder="gen2")
    with pytest.raises(CardModelError):
        demo_holder("nobody")


def test_gen2_keys_are_3des() -> None:
    image = demo_card_image(2)
    assert {k.algorithm for k in image.keys.values()} == {Algorithm.TDES}
    assert KeyRole.RK.kid in image.keys
    assert KeyRole.RK.kid not in demo_card_image(1).keys
