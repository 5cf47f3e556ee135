"""Card-side helpers of the reliability tests: demo cards in any life-cycle
state, hex exchanges, cryptograms and MACs computed with keys diversified
independently from the demo key set (never read from the card image), and
snapshots of everything a card keeps (persistent image and session).

Nothing here imports the card OS's command code: the oracle of the access
tests must not lean on what it checks.  ``emulator.card_os.CardOS`` is only
constructed and driven through ``process``.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from apdu.command import CommandApdu
from apdu.elements import encode_pin
from apdu.sm import iv_from_challenge, wrap_command
from card_model.demo import demo_card_image, demo_key_set
from card_model.image import BinaryFile, CardImage, RecordFile
from card_model.keys import Algorithm, KeyRole, block_key, role_for_kid
from card_model.lifecycle import LifeCycle
from card_model.profile import Profile, load_profile
from emulator.card_os import CardOS
from sm_crypto.block import Sm4Key, TdesKey

Interface = Literal["contact", "contactless"]

SSSE_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
PROFILE_OF_GENERATION = {3: "gen3", 2: "gen2", 1: "gen1"}


class LocalMac:
    """:class:`apdu.sm.MacProvider` over a locally held key (tests only)."""

    def __init__(self, key: Sm4Key | TdesKey) -> None:
        self.key = key

    def mac(self, message: bytes, iv: bytes) -> bytes:
        if isinstance(self.key, TdesKey):
            return self.key.retail_mac(message, iv)
        return self.key.mac(message, iv)


def profile_of(generation: int) -> Profile:
    return load_profile(PROFILE_OF_GENERATION[generation])


def make_image(generation: int, life_cycle: LifeCycle, *, holder: str | None = None) -> CardImage:
    """A demo card image in ``life_cycle``; a temporarily blocked card remembers
    that it was active (as APPLICATION BLOCK from 02 leaves it)."""
    if life_cycle is LifeCycle.TEMPORARILY_BLOCKED:
        image = demo_card_image(generation, life_cycle=LifeCycle.ACTIVE, holder=holder)
        image.life_cycle = LifeCycle.TEMPORARILY_BLOCKED
        image.blocked_from = LifeCycle.ACTIVE
        return image
    return demo_card_image(generation, life_cycle=life_cycle, holder=holder)


def make_card(
    generation: int = 3,
    life_cycle: LifeCycle = LifeCycle.PERSONALISED,
    *,
    interface: Interface = "contact",
    holder: str | None = None,
) -> CardOS:
    return CardOS(make_image(generation, life_cycle, holder=holder), interface=interface)


def clone_image(image: CardImage) -> CardImage:
    """A deep copy of ``image``, faster than ``copy.deepcopy`` for the parts
    every image has (fields added later are deep-copied the slow way)."""
    out = copy.copy(image)
    for f in dataclasses.fields(image):
        value = getattr(image, f.name)
        if f.name == "pin":
            value = dataclasses.replace(value)
        elif f.name == "keys":
            value = {kid: dataclasses.replace(key) for kid, key in value.items()}
        elif f.name == "record_files":
            value = {fid: RecordFile(rf.fid, dict(rf.records)) for fid, rf in value.items()}
        elif f.name == "binary_files":
            value = {fid: BinaryFile(bf.fid, bytearray(bf.content)) for fid, bf in value.items()}
        elif not isinstance(value, (str, bytes, int, type(None))):
            value = copy.deepcopy(value)
        setattr(out, f.name, value)
    return out


def clone_card(card: CardOS) -> CardOS:
    """A new card OS on a copy of ``card``'s image with the same security state."""
    out = CardOS(clone_image(card.image), interface=card.interface)
    out.session.authenticated = set(card.session.authenticated)
    out.session.pin_verified = card.session.pin_verified
    return out


def tx(card: Any, apdu: bytes | str) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    answer: bytes = card.process(raw)
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def algorithm_of(image: CardImage) -> Algorithm:
    return load_profile(image.profile).algorithm


def card_key(image: CardImage, role: KeyRole) -> Sm4Key | TdesKey:
    """The card key of ``role``, diversified from the demo masters with the card's factor."""
    return key_for_card(image.profile, image.card_id, role)


@cache
def key_for_card(profile: str, card_id: bytes, role: KeyRole) -> Sm4Key | TdesKey:
    algorithm = load_profile(profile).algorithm
    return block_key(algorithm, demo_key_set().card_key(algorithm, role, card_id[8:]))


def card_key_bytes(image: CardImage, role: KeyRole) -> bytes:
    algorithm = algorithm_of(image)
    return demo_key_set().card_key(algorithm, role, image.card_id[8:])


def get_challenge(card: CardOS, length: int = 4) -> bytes | None:
    data, sw = tx(card, bytes((0x00, 0x84, 0x00, 0x00, length)))
    return data if sw == 0x9000 else None


def sm_apdu(
    image: CardImage, role: KeyRole, cla: int, ins: int, p1: int, p2: int, data: bytes, challenge: bytes
) -> bytes:
    """The command protected with a MAC by the card key of ``role`` over ``challenge``."""
    key = card_key(image, role)
    iv = iv_from_challenge(challenge, key.block_size)
    return wrap_command(CommandApdu(cla & ~0x04, ins, p1, p2, data), iv, LocalMac(key)).encode()


def cryptogram(image: CardImage, role: KeyRole, challenge: bytes) -> bytes:
    key = card_key(image, role)
    return key.encrypt_ecb(challenge.ljust(key.block_size, b"\x00"))


def external_auth_apdu(image: CardImage, kid: int, challenge: bytes, *, good: bool = True) -> bytes:
    """EXTERNAL AUTHENTICATE for KID ``kid``: the right cryptogram (the key of
    that KID's role), or a wrong one of the right size."""
    role = role_for_kid(kid)
    size = load_profile(image.profile).block_size
    if role is not None and good:
        data = cryptogram(image, role, challenge)
    else:
        data = bytes(b ^ 0x5A for b in (cryptogram(image, role, challenge) if role else bytes(size)))
    return bytes((0x00, 0x82, 0x00, kid, len(data))) + data


def external_authenticate(card: CardOS, role: KeyRole) -> int:
    """GET CHALLENGE 8 (or the block) and EXTERNAL AUTHENTICATE with ``role``; the SW."""
    challenge = get_challenge(card, 8)
    if challenge is None:
        return tx(card, external_auth_apdu(card.image, role.kid, bytes(8)))[1]
    return tx(card, external_auth_apdu(card.image, role.kid, challenge))[1]


def verify_apdu(pin: str, pin_id: int = 0x01) -> bytes:
    block = encode_pin(pin)
    return bytes((0x00, 0x20, 0x00, pin_id, len(block))) + block


def random_block(size: int) -> bytes:
    return secrets.token_bytes(size)


# -- snapshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything a card keeps: the persistent image (without the revision
    counter, which every commit raises) and the volatile session."""

    image: dict[str, Any]
    authenticated: frozenset[int]
    pin_verified: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def life_cycle(self) -> int:
        return int(self.image["life_cycle"])


def snapshot(card: CardOS) -> Snapshot:
    image = card.image.to_dict()
    image.pop("revision", None)
    session = card.session
    return Snapshot(image, frozenset(session.authenticated), bool(session.pin_verified))


def _changed(prefix: str, a: Any, b: Any, out: dict[str, tuple[Any, Any]]) -> None:
    """Record the differing leaves of ``a`` and ``b`` (descending only where they differ)."""
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            _changed(f"{prefix}.{key}" if prefix else str(key), a.get(key), b.get(key), out)
    elif isinstance(a, list) and isinstance(b, list) and _keyed(a) and _keyed(b):
        _changed(prefix, {f"[{i['kid']}]": i for i in a}, {f"[{i['kid']}]": i for i in b}, out)
    else:
        out[prefix] = (a, b)


def _keyed(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "kid" in i for i in items)


def diff(before: Snapshot, after: Snapshot) -> dict[str, tuple[Any, Any]]:
    """Changed leaves: ``{path: (before, after)}`` (``keys[3].tries_left``,
    ``record_files.EF07.20``, ``life_cycle``); session changes as
    ``session.authenticated`` / ``session.pin_verified``."""
    out: dict[str, tuple[Any, Any]] = {}
    _changed("", before.image, after.image, out)
    out = {path.replace(".[", "["): change for path, change in out.items()}
    if before.authenticated != after.authenticated:
        out["session.authenticated"] = (sorted(before.authenticated), sorted(after.authenticated))
    if before.pin_verified != after.pin_verified:
        out["session.pin_verified"] = (before.pin_verified, after.pin_verified)
    return out


def key_path(kid: int, attribute: str = "tries_left") -> str:
    return f"keys[{kid}].{attribute}"


def record_path(fid: int, tag: int) -> str:
    return f"record_files.{fid:04X}.{tag:02X}"
