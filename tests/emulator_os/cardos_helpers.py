"""Helpers of the card OS / PSAM tests: build demo cards, send hex APDUs,
compute cryptograms and MACs with keys derived independently from the demo
key set."""

from __future__ import annotations

from apdu.command import CommandApdu
from apdu.sm import iv_from_challenge, wrap_command
from card_model.demo import demo_card_image, demo_key_set
from card_model.image import CardImage
from card_model.keys import Algorithm, KeyRole, block_key
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from card_model.store import ImageStore
from emulator.card_os import CardOS
from sm_crypto.block import Sm4Key, TdesKey

SSSE_NAME = "7378312E73682EC9E7BBE1B1A3D5CF"
SELECT_SSSE = "00A404000F" + SSSE_NAME


def make_card(
    generation: int = 3,
    *,
    life_cycle: LifeCycle | None = None,
    store: ImageStore | None = None,
    interface: str = "contact",
    holder: str | None = None,
) -> CardOS:
    image = demo_card_image(generation, life_cycle=life_cycle, holder=holder)
    return CardOS(image, store=store, interface=interface)  # type: ignore[arg-type]


def tx(card: object, apdu: str | bytes) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    answer: bytes = card.process(raw)  # type: ignore[attr-defined]
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def sw_of(card: object, apdu: str | bytes) -> int:
    return tx(card, apdu)[1]


def algorithm_of(image: CardImage) -> Algorithm:
    return load_profile(image.profile).algorithm


def card_key(image: CardImage, role: KeyRole) -> Sm4Key | TdesKey:
    """The card key of ``role`` diversified from the demo masters (not read from the image)."""
    algorithm = algorithm_of(image)
    return block_key(algorithm, demo_key_set().card_key(algorithm, role, image.card_id[8:]))


class LocalMac:
    def __init__(self, key: Sm4Key | TdesKey) -> None:
        self.key = key

    def mac(self, message: bytes, iv: bytes) -> bytes:
        if isinstance(self.key, TdesKey):
            return self.key.retail_mac(message, iv)
        return self.key.mac(message, iv)


def challenge(card: CardOS, length: int = 4) -> bytes:
    data, sw = tx(card, f"00840000{length:02X}")
    assert sw == 0x9000 and len(data) == length
    return data


def sm_apdu(
    card: CardOS,
    role: KeyRole,
    cla: int,
    ins: int,
    p1: int,
    p2: int,
    data: bytes = b"",
    *,
    ch: bytes | None = None,
) -> bytes:
    """GET CHALLENGE 04 (unless ``ch`` given) and the MAC-protected command bytes."""
    ch = challenge(card) if ch is None else ch
    key = card_key(card.image, role)
    iv = iv_from_challenge(ch, key.block_size)
    return wrap_command(CommandApdu(cla & ~0x04, ins, p1, p2, data), iv, LocalMac(key)).encode()


def sm_send(
    card: CardOS, role: KeyRole, cla: int, ins: int, p1: int, p2: int, data: bytes = b""
) -> tuple[bytes, int]:
    return tx(card, sm_apdu(card, role, cla, ins, p1, p2, data))


def cryptogram(card: CardOS, role: KeyRole, ch: bytes) -> bytes:
    key = card_key(card.image, role)
    return key.encrypt_ecb(ch.ljust(key.block_size, b"\x00"))


def external_auth(card: CardOS, role: KeyRole = KeyRole.RK) -> int:
    ch = challenge(card, 8)
    crypt = cryptogram(card, role, ch)
    return sw_of(card, bytes((0x00, 0x82, 0x00, role.kid, len(crypt))) + crypt)
