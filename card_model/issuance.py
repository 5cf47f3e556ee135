"""Software issuance: a personalised card image from profile, holder and card
data, the issuer key set and (generation 3) a test CA.

* per-card keys: every key of the profile diversified from the issuer master
  of its role with the card's factor (issuer serial);
* PIN: the initial PIN of the profile rule (last 6 SSN characters, X -> 0),
  full tries, "initial" flag set;
* records: EF05/EF06/EF07 filled from the data (absent optional values are
  absent records);
* generation 3 (profile ``sm2``): an SM2 signature key pair "generated on
  the card", an SM2 encryption key pair from the CA side, and their
  certificates in the binary files (``sign_certificate`` /
  ``encryption_certificate``), zero-filled to the file size.

``life_cycle=LifeCycle.BLANK`` makes a card for the issuance flows instead:
files and keys are written but there is no SM2 key and no certificate yet.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping

from card_model.applications import application_files
from card_model.errors import IssuanceError
from card_model.holder import CardData, HolderData
from card_model.image import BinaryFile, CardImage, KeyState, PinState, RecordFile
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from card_model.profile import Profile
from card_model.records import element_value, stored_value
from sm_crypto.ca import TestCa
from sm_crypto.sm2 import Sm2PrivateKey, Sm2PublicKey
from sm_crypto.sm3 import sm3
from sm_crypto.x509 import Sm2Certificate

__all__ = ["CHINA_TZ", "card_certificate_subject", "issue_card"]

CHINA_TZ = _dt.timezone(_dt.timedelta(hours=8))


def card_certificate_subject(profile: Profile, card: CardData, purpose: str) -> Mapping[str, str]:
    """Subject of a card certificate: no personal data beyond the card's own numbers."""
    return {
        "C": "CN",
        "O": profile.issuer_name or "sscard",
        "OU": f"社会保障卡{purpose}",
        "CN": card.card_number.value,
        "serialNumber": card.card_id.hex(),
    }


def _serial_number(card: CardData, purpose: str) -> int:
    digest = sm3(f"sscard certificate|{purpose}|".encode() + card.card_id.to_bytes())
    return (int.from_bytes(digest[:8], "big") >> 1) | 1


def _certificate(
    ca: TestCa, public_key: Sm2PublicKey, profile: Profile, card: CardData, purpose: str
) -> Sm2Certificate:
    start = _dt.datetime.combine(card.issue_date.value, _dt.time(), CHINA_TZ)
    end = _dt.datetime.combine(card.expiry_date.value, _dt.time(23, 59, 59), CHINA_TZ)
    subject = card_certificate_subject(profile, card, "签名" if purpose == "sign" else "加密")
    serial = _serial_number(card, purpose)
    if purpose == "sign":
        return ca.issue_signature_certificate(
            public_key, subject, not_before=start, not_after=end, serial=serial
        )
    return ca.issue_encryption_certificate(
        public_key, subject, not_before=start, not_after=end, serial=serial
    )


def issue_card(
    profile: Profile,
    holder: HolderData,
    card: CardData,
    key_set: IssuerKeySet,
    *,
    ca: TestCa | None = None,
    life_cycle: LifeCycle | None = None,
    sm2_sign_key: Sm2PrivateKey | None = None,
    sm2_encrypt_key: Sm2PrivateKey | None = None,
) -> CardImage:
    """Build a personalised card image (state ``profile.issued_state`` unless
    ``life_cycle`` says otherwise)."""
    state = profile.issued_state if life_cycle is None else life_cycle
    blank = state is LifeCycle.BLANK
    if profile.sm2 and not blank and ca is None:
        raise IssuanceError("issuance", "no_ca")
    factor = card.card_id.factor
    keys = {
        spec.kid: KeyState(
            kid=spec.kid,
            role=spec.role,
            algorithm=profile.algorithm,
            version=spec.version,
            value=key_set.card_key(profile.algorithm, spec.role, factor),
            tries_left=spec.try_limit,
            try_limit=spec.try_limit,
        )
        for spec in profile.keys
    }
    record_files: dict[int, RecordFile] = {}
    binary_files: dict[int, BinaryFile] = {}
    for spec in profile.files:
        if spec.kind == "records":
            records: dict[int, bytes] = {}
            for record in spec.records:
                raw = element_value(record.element, profile, holder, card)
                if raw is not None:
                    records[record.tag] = stored_value(record, raw)
            record_files[spec.fid] = RecordFile(spec.fid, records)
        else:
            binary_files[spec.fid] = BinaryFile(spec.fid, bytearray(spec.size))
    # the transport wallet (empty) and the financial application (card_model.applications)
    app_records, app_binaries = application_files(
        profile.applications,
        card_id=card.card_id.to_bytes(),
        bank_code=card.bank.code,
        issue=card.issue_date.value,
        expiry=card.expiry_date.value,
    )
    record_files.update(app_records)
    binary_files.update(app_binaries)
    image = CardImage(
        profile=profile.name,
        card_id=card.card_id.to_bytes(),
        life_cycle=state,
        pin=PinState(
            value=holder.ssn.initial_pin,
            tries_left=profile.pin.try_limit,
            try_limit=profile.pin.try_limit,
            initial=True,
        ),
        keys=keys,
        record_files=record_files,
        binary_files=binary_files,
    )
    if profile.sm2 and not blank:
        assert ca is not None
        sign_key = sm2_sign_key or Sm2PrivateKey.generate()
        encrypt_key = sm2_encrypt_key or Sm2PrivateKey.generate()
        image.sm2_sign_key = sign_key.to_bytes()
        image.sm2_encrypt_key = encrypt_key.to_bytes()
        contents = {
            "sign_certificate": _certificate(ca, sign_key.public_key(), profile, card, "sign").der,
            "encryption_certificate": _certificate(
                ca, encrypt_key.public_key(), profile, card, "encrypt"
            ).der,
        }
        for spec in profile.files:
            if spec.kind == "binary" and spec.content in contents:
                der = contents[spec.content]
                if len(der) > spec.size:
                    raise IssuanceError("issuance", "too_long", f"{spec.name} certificate")
                binary_files[spec.fid].content[: len(der)] = der
    return image
