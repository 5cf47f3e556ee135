"""Card initialisation: the blank card as the initialisation organisation delivers it.

Decision (docs/card-os.md §11): the card OS does not create files at run
time.  As with the file systems of real social security card COSes, the
initialisation organisation (初始化机构, EF05 tag 04) creates the SSSE and
every file of the profile before the card reaches the issuer, writes the
card identification elements of ``profile.personalisation.initialised``
(card identification code, card type, specification version,
initialising organisation) and loads the card's transport key (KTK),
diversified like every card key with the issuer serial.  The card is then
in life-cycle state 00 (blank): no other key, no PIN, no holder data, no
SM2 key pair, zero-filled certificate files, an empty transport purse
(no financial application: the partner bank personalises it).  Instant issuance
personalises it over APDUs (terminal.flows.issuance).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace

from card_model.applications import application_files
from card_model.errors import IssuanceError
from card_model.image import BinaryFile, CardImage, KeyState, PinState, RecordFile
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from card_model.profile import Profile
from card_model.records import stored_value
from card_model.values import CardIdCode

__all__ = ["initialise_card", "initialised_value"]


def initialised_value(element: str, profile: Profile, card_id: CardIdCode) -> bytes:
    """The unpadded value of an element written at initialisation."""
    values = {
        "card_id": card_id.to_bytes(),
        "card_type": profile.card_type.encode("ascii"),
        "spec_version": profile.spec_version.encode("ascii"),
        "init_org": profile.init_org,
    }
    value = values.get(element)
    if value is None:
        raise IssuanceError("personalisation", "inconsistent", f"{element} is not written at initialisation")
    return value


def initialise_card(profile: Profile, card_id: CardIdCode, key_set: IssuerKeySet) -> CardImage:
    """A blank card (state 00) of ``profile`` with identification ``card_id``."""
    rules = profile.personalisation
    factor = card_id.factor
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
        if spec.role in rules.initial_roles
    }
    record_files: dict[int, RecordFile] = {}
    binary_files: dict[int, BinaryFile] = {}
    for spec in profile.files:
        if spec.kind == "records":
            records = {
                record.tag: stored_value(record, initialised_value(record.element, profile, card_id))
                for record in spec.records
                if record.element in rules.initialised
            }
            record_files[spec.fid] = RecordFile(spec.fid, records)
        else:
            binary_files[spec.fid] = BinaryFile(spec.fid, bytearray(spec.size))
    # the transport wallet's internal files exist from initialisation (an empty
    # purse); the financial application is the bank's to personalise
    app_records, app_binaries = application_files(
        replace(profile.applications, financial=None),
        card_id=card_id.to_bytes(),
        bank_code="",
        issue=_dt.date.min,
        expiry=_dt.date.max,
    )
    record_files.update(app_records)
    binary_files.update(app_binaries)
    return CardImage(
        profile=profile.name,
        card_id=card_id.to_bytes(),
        life_cycle=LifeCycle.BLANK,
        pin=PinState(value="", tries_left=0, try_limit=profile.pin.try_limit, initial=False),
        keys=keys,
        record_files=record_files,
        binary_files=binary_files,
    )
