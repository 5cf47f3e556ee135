"""Deterministic demo material: holders, cards, key set, CA and PSAM.

DEMO AND TESTS ONLY.  Every secret here is derived from a public label, so
a demo card protects nothing.  What is deterministic:

* holders and card data (``card_model/data/demo/holders.toml``), the issuer
  key set (:func:`card_model.keys.demo_key_set`) and so every card key,
  the initial PIN, the SM2 key pairs of each demo card, the demo root CA key
  and its certificate (kept as data so every process trusts the same anchor);
* card certificates have fixed subjects, serial numbers and validity, but
  SM2 signatures use fresh nonces: their bytes differ between processes
  (they verify against the same anchor).  Within one process each demo
  image is built once and copied.

Public API (used by the emulator runner, the CLI and the terminal tests):
:func:`demo_card_image`, :func:`demo_blank_card_image`,
:func:`demo_stock_card_image`, :func:`demo_psam_image`, :func:`demo_holder`, :func:`demo_ca`,
:func:`demo_key_set`, :data:`DEMO_HOLDERS`.
"""

from __future__ import annotations

import datetime as _dt
from functools import cache
from typing import Any

from card_model._data import load_data
from card_model.errors import CardModelError
from card_model.holder import CardData, HolderData
from card_model.image import CardImage
from card_model.initialisation import initialise_card
from card_model.issuance import issue_card
from card_model.keys import demo_key_set
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from card_model.psam_image import PsamImage
from card_model.values import CardIdCode, RegionCode
from sm_crypto.ca import TestCa
from sm_crypto.sm2 import Sm2PrivateKey
from sm_crypto.sm3 import sm3
from sm_crypto.x509 import Sm2Certificate

__all__ = [
    "DEMO_HOLDERS",
    "demo_blank_card_image",
    "demo_ca",
    "demo_card_image",
    "demo_holder",
    "demo_key_set",
    "demo_psam_image",
    "demo_sm2_key",
    "demo_stock_card_image",
    "make_demo_ca_certificate",
]

DEMO_HOLDERS = ("gen3", "gen2", "gen1", "x_long_name")


def _doc() -> dict[str, Any]:
    return load_data("demo", "holders.toml")


def demo_holder(name: str = "gen3") -> tuple[HolderData, CardData]:
    """A demo holder and card (``gen3``, ``gen2``, ``gen1`` or ``x_long_name``)."""
    if name not in DEMO_HOLDERS:
        raise CardModelError("holder_file", "unknown_code", f"demo holder (one of {', '.join(DEMO_HOLDERS)})")
    section = _doc()[name]
    return HolderData.from_mapping(section["holder"]), CardData.from_mapping(section["card"])


def demo_sm2_key(label: str) -> Sm2PrivateKey:
    """A deterministic SM2 key: d = SM3(label) mod 2^255 + 1 (below the order n)."""
    d = int.from_bytes(sm3(label.encode("utf-8")), "big") % (1 << 255) + 1
    return Sm2PrivateKey.from_int(d)


def _ca_settings() -> dict[str, Any]:
    table: dict[str, Any] = _doc()["ca"]
    return table


def make_demo_ca_certificate() -> Sm2Certificate:
    """Make the demo root certificate from its key and settings (to refresh
    ``card_model/data/demo/ca.toml`` when the settings change)."""
    settings = _ca_settings()
    ca = TestCa(
        dict(settings["subject"]),
        key=demo_sm2_key(settings["key_label"]),
        not_before=_dt.datetime.fromisoformat(settings["not_before"]),
        not_after=_dt.datetime.fromisoformat(settings["not_after"]),
    )
    return ca.certificate


@cache
def demo_ca() -> TestCa:
    """The demo root CA with the stored certificate (the anchor for demo cards)."""
    key = demo_sm2_key(_ca_settings()["key_label"])
    certificate = Sm2Certificate.from_pem(load_data("demo", "ca.toml")["certificate"].encode("ascii"))
    if certificate.public_key.to_bytes() != key.public_key().to_bytes():
        raise CardModelError("image", "inconsistent", "demo CA certificate does not match its key")
    return TestCa.from_parts(key, certificate, b"1234567812345678")


@cache
def _demo_image(holder_name: str, life_cycle: LifeCycle | None) -> CardImage:
    holder, card = demo_holder(holder_name)
    profile_name = holder_name if holder_name in ("gen3", "gen2", "gen1") else "gen3"
    profile = load_profile(profile_name)
    blank = life_cycle is LifeCycle.BLANK
    return issue_card(
        profile,
        holder,
        card,
        demo_key_set(),
        ca=None if blank or not profile.sm2 else demo_ca(),
        life_cycle=life_cycle,
        sm2_sign_key=demo_sm2_key(f"sscard demo card sign key|{card.card_number.value}"),
        sm2_encrypt_key=demo_sm2_key(f"sscard demo card encryption key|{card.card_number.value}"),
    )


def demo_card_image(
    generation: int = 3, *, life_cycle: LifeCycle | None = None, holder: str | None = None
) -> CardImage:
    """A fresh copy of a demo card image.

    ``generation`` 3/2/1 picks the profile and its demo holder; ``holder``
    may name another demo holder (``x_long_name``, issued on gen3);
    ``life_cycle`` defaults to the profile's issued state (01 personalised).
    """
    if generation not in (1, 2, 3):
        raise CardModelError("profile", "unknown_code", "generation (1, 2 or 3)")
    name = holder if holder is not None else f"gen{generation}"
    if holder is not None and holder in ("gen3", "gen2", "gen1") and holder != f"gen{generation}":
        raise CardModelError("holder_file", "inconsistent", "holder and generation differ")
    return _demo_image(name, life_cycle).copy()


def demo_blank_card_image(generation: int = 3) -> CardImage:
    """A demo card in the blank (issuance) state: no SM2 key, no certificates."""
    return demo_card_image(generation, life_cycle=LifeCycle.BLANK)


def demo_stock_card_image(number: int = 1, *, generation: int = 3, region_code: str = "110102") -> CardImage:
    """Blank card number ``number`` of the demo card stock: as the initialisation
    organisation delivers it (state 00, EF05 identification records, the
    transport key only; card_model.initialisation).  The issuer serial is
    ``SM3("sscard demo card stock|<generation>|<region>|<number>")[:8]``, so
    each number is a distinct, reproducible card."""
    if generation not in (1, 2, 3):
        raise CardModelError("profile", "unknown_code", "generation (1, 2 or 3)")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise CardModelError("serial", "wrong_type", "a card stock number is an integer >= 0")
    region = RegionCode.for_issuance(region_code)
    serial = sm3(f"sscard demo card stock|{generation}|{region.code}|{number}".encode())[:8]
    return initialise_card(load_profile(f"gen{generation}"), CardIdCode(region, serial), demo_key_set())


def demo_psam_image() -> PsamImage:
    """The demo PSAM: every demo master key (SM4 0x01-0x0A, 3DES 0x21-0x2A) with
    the role's usage, terminal number from the demo data."""
    return PsamImage.from_key_set(demo_key_set(), str(_doc()["psam"]["terminal_number"]))
