"""The card during issuance: probing a blank card and the personalisation APDUs.

A blank card cannot be detected like an issued one (EF05 holds only the
initialisation records), so issuance talks to it through the session's
protocol without :meth:`CardSession.connect`: SELECT the SSSE, read EF05
(card identification code, specification version -> profile), GET DATA
DF01 (life cycle) and DF05 (what personalisation has loaded).  The
commands (docs/card-os.md §11):

=================================  ==============================================
WRITE KEY (key / PIN)              GET CHALLENGE 04, ``84 D4 P1 P2 Lc <body>``;
                                   the body comes from the key source (KTK)
UPDATE RECORD                      GET CHALLENGE 04, ``04 DC tag P2 Lc ... MAC(AMK)``
UPDATE BINARY (certificates)       per chunk: GET CHALLENGE 04, ``04 D6 ... MAC(AMK)``
GENERATE KEY PAIR                  GET CHALLENGE 04, ``84 4A 00 00 04 MAC`` -> ``04||x||y``
IMPORT ENCRYPTION KEY PAIR         GET CHALLENGE 04, ``84 4A 02 00 D6 <envelope> MAC``
READ PUBLIC KEY                    ``80 4A 01|02 00 41``
proof of possession                ``00 88 80 00 20 <32 bytes>`` (SM2 signature)
END OF PERSONALISATION             GET CHALLENGE 04, ``84 44 01 00 04 MAC``
CARD BLOCK (scrap)                 GET CHALLENGE 04, ``84 16 00 00 04 MAC``
=================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from apdu.command import CommandApdu
from apdu.errors import (
    CardError,
    KeyNotFound,
    ProtocolError,
    RecordNotFound,
    WrongCardType,
)
from apdu.response import ResponseApdu
from apdu.sm import iv_from_challenge, wrap_command
from apdu.tlv import parse_records
from card_model.errors import CardModelError
from card_model.keyload import WRITE_KEY_CLA, WRITE_KEY_INS
from card_model.keys import KeyRole, role_for_kid
from card_model.lifecycle import LifeCycle
from card_model.profile import FileSpec, Profile, load_profile
from card_model.values import CardIdCode
from terminal._data import load_data
from terminal.keysource.base import CardKeys, KeySource
from terminal.session import CardSession, generation_for_version

__all__ = ["BlankCard", "CardProgress"]

LE_ALL = 256
SM_CHALLENGE = 4
EF05_SFI = 5
CARD_ID_TAG = 0x01
SPEC_VERSION_TAG = 0x03
CARD_NUMBER_TAG = 0x07
DER_HEADER = 4
PUBLIC_KEY_LENGTH = 65
SIGN_KEY = 0x01
ENCRYPT_KEY = 0x02


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("issuance")["card"]
    return table


def _cards() -> dict[str, Any]:
    return load_data("cards")


@dataclass(frozen=True, slots=True)
class CardProgress:
    """What the card says about its personalisation (GET DATA DF01 and DF05, EF05)."""

    card_id: CardIdCode
    profile: Profile
    life_cycle: LifeCycle
    loaded_kids: frozenset[int]
    flags: int
    card_number: str | None

    def _flag(self, name: str) -> bool:
        return bool(self.flags & int(_settings()[name]))

    @property
    def card_id_hex(self) -> str:
        return self.card_id.hex()

    @property
    def pin_loaded(self) -> bool:
        return self._flag("flag_pin")

    @property
    def sign_key(self) -> bool:
        return self._flag("flag_sign_key")

    @property
    def encrypt_key(self) -> bool:
        return self._flag("flag_encrypt_key")

    @property
    def sign_certificate(self) -> bool:
        return self._flag("flag_sign_certificate")

    @property
    def encrypt_certificate(self) -> bool:
        return self._flag("flag_encrypt_certificate")

    @property
    def records_complete(self) -> bool:
        return self._flag("flag_records")

    @property
    def complete(self) -> bool:
        """Everything END OF PERSONALISATION needs is on the card (docs/card-os.md §11)."""
        if any(spec.kid not in self.loaded_kids for spec in self.profile.keys):
            return False
        if not (self.pin_loaded and self.records_complete):
            return False
        if self.profile.sm2:
            return self.sign_key and self.encrypt_key and self.sign_certificate and self.encrypt_certificate
        return True

    def has_key(self, role: KeyRole) -> bool:
        spec = self.profile.key_for_role(role)
        return spec is not None and spec.kid in self.loaded_kids

    @property
    def loaded_roles(self) -> tuple[str, ...]:
        roles = (role_for_kid(kid) for kid in sorted(self.loaded_kids))
        return tuple(role.value for role in roles if role is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id_hex,
            "profile": self.profile.name,
            "generation": self.profile.generation,
            "life_cycle": self.life_cycle.label,
            "life_cycle_text": self.life_cycle.text,
            "card_number": self.card_number,
            "loaded_roles": list(self.loaded_roles),
            "pin_loaded": self.pin_loaded,
            "records_complete": self.records_complete,
            "sign_key": self.sign_key,
            "encrypt_key": self.encrypt_key,
            "sign_certificate": self.sign_certificate,
            "encrypt_certificate": self.encrypt_certificate,
            "complete": self.complete,
        }


class BlankCard:
    """Issuance's view of the card in ``session`` (connected at the transport only)."""

    def __init__(self, session: CardSession, key_source: KeySource | None = None) -> None:
        self.session = session
        self._source = key_source if key_source is not None else session.key_source
        self._keys: CardKeys | None = None
        self._authenticated: set[int] = set()
        self.progress: CardProgress | None = None

    # -- probing ---------------------------------------------------------------------

    def connect(self) -> None:
        if not self.session.transport.connected:
            self.session.transport.connect()

    def probe(self) -> CardProgress:
        """SELECT, EF05, DF01, DF05: the card's identity and personalisation state."""
        reader = self.session.transport.reader
        select = self.session.select_application(check=False)
        if select.sw not in {int(sw, 16) for sw in _cards()["ssse"]["select_ok"]}:
            raise WrongCardType(
                f"{reader}: no social security application (SELECT {select.sw:04X})", sw=select.sw
            )
        try:
            records = dict(parse_records(self.session.read_all_raw(EF05_SFI)))
            card_id = CardIdCode.from_bytes(records[CARD_ID_TAG])
            version = records[SPEC_VERSION_TAG].decode("ascii")
        except (KeyError, UnicodeDecodeError, CardModelError, CardError, ProtocolError) as exc:
            raise WrongCardType(f"{reader}: card identification (EF05) unreadable") from exc
        found = generation_for_version(version)
        if found is None:
            raise WrongCardType(f"{reader}: unknown specification version in EF05")
        profile = load_profile(found[1])
        life_cycle = self.session.life_cycle()
        raw = self._get_data(int(_settings()["progress_tag"]))
        size = int(_settings()["progress_key_bytes"])
        if len(raw) != size + 1:
            raise ProtocolError("GET DATA DF05: 5 bytes expected")
        bitmap = int.from_bytes(raw[:size], "big")
        kids = frozenset(kid for kid in range(8 * size) if bitmap >> kid & 1)
        number = None
        if CARD_NUMBER_TAG in records:
            number = records[CARD_NUMBER_TAG].decode("ascii", "replace").strip()
        self.progress = CardProgress(card_id, profile, life_cycle, kids, raw[size], number)
        if self._source is not None:
            self._keys = CardKeys(self._source, profile.algorithm, card_id.factor)
        return self.progress

    def _get_data(self, tag: int) -> bytes:
        return self.session.send(CommandApdu(0x80, 0xCA, 0xDF, tag, le=LE_ALL)).data

    @property
    def keys(self) -> CardKeys:
        if self._keys is None:
            self.session.keys(self._source)  # raises the no-key-source error
            raise ProtocolError("issuance: probe the card before using its keys")
        return self._keys

    @property
    def profile(self) -> Profile:
        if self.progress is None:
            raise ProtocolError("issuance: probe the card first")
        return self.progress.profile

    # -- commands ---------------------------------------------------------------------

    def _iv(self) -> bytes:
        return iv_from_challenge(self.session.get_challenge(SM_CHALLENGE), self.profile.block_size)

    def secure(self, cmd: CommandApdu, role: KeyRole) -> CommandApdu:
        """GET CHALLENGE 04 and ``cmd`` with the MAC of ``role`` (send it next)."""
        return wrap_command(cmd, self._iv(), self.keys.mac_provider(role))

    def send(self, cmd: CommandApdu, *, accept: tuple[int, ...] = ()) -> ResponseApdu:
        return self.session.send(cmd, context="key", accept=accept)

    def write_key_command(self, p1: int, p2: int, pin_block: bytes = b"") -> CommandApdu:
        """GET CHALLENGE 04 and the WRITE KEY command (body from the key source)."""
        body = self.keys.write_key_body(self._iv(), p1, p2, pin_block)
        return CommandApdu(WRITE_KEY_CLA, WRITE_KEY_INS, p1, p2, body, sensitive=True)

    def update_record_command(self, spec: FileSpec, tag: int, stored: bytes) -> CommandApdu:
        if spec.sfi is None:
            raise ProtocolError(f"{spec.name}: a personalised record file needs an SFI")
        body = bytes((tag, len(stored))) + stored
        return self.secure(
            CommandApdu(0x00, 0xDC, tag, (spec.sfi << 3) | 0x04, body, sensitive=True), self.write_role
        )

    @property
    def write_role(self) -> KeyRole:
        return self.profile.personalisation.write_role

    def binary_chunks(self, spec: FileSpec, data: bytes) -> list[tuple[int, bytes]]:
        size = int(_settings()["certificate_chunk"])
        return [(offset, data[offset : offset + size]) for offset in range(0, len(data), size)]

    def update_binary_command(self, spec: FileSpec, offset: int, chunk: bytes) -> CommandApdu:
        if spec.sfi is not None and offset < 0x100:
            p1, p2 = 0x80 | spec.sfi, offset
        else:
            self.session.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, spec.fid.to_bytes(2, "big")))
            p1, p2 = offset >> 8, offset & 0xFF
        return self.secure(CommandApdu(0x00, 0xD6, p1, p2, chunk), self.write_role)

    def generate_command(self) -> CommandApdu:
        return self.secure(CommandApdu(0x80, 0x4A, 0x00, 0x00, le=PUBLIC_KEY_LENGTH), self.write_role)

    def import_command(self, envelope: bytes) -> CommandApdu:
        return self.secure(CommandApdu(0x80, 0x4A, 0x02, 0x00, envelope, sensitive=True), self.write_role)

    def end_command(self) -> CommandApdu:
        return self.secure(CommandApdu(0x80, 0x44, 0x01, 0x00), self.write_role)

    def card_block_command(self) -> CommandApdu:
        return self.secure(CommandApdu(0x80, 0x16, 0x00, 0x00), self.write_role)

    # -- reads --------------------------------------------------------------------------

    def read_public_key(self, which: int = SIGN_KEY) -> bytes | None:
        """``80 4A 01|02 00 41``: the signature (1) or encryption (2) public key, None when absent."""
        try:
            data = self.session.send(CommandApdu(0x80, 0x4A, which, 0x00, le=PUBLIC_KEY_LENGTH)).data
        except KeyNotFound:
            return None
        if len(data) != PUBLIC_KEY_LENGTH:
            raise ProtocolError("READ PUBLIC KEY: 65 bytes expected")
        return data

    def sign(self, message: bytes) -> bytes:
        """The card's SM2 signature over ``SSCARD-IA || message`` (INTERNAL AUTHENTICATE P1 80)."""
        return self.session.send(CommandApdu(0x00, 0x88, 0x80, 0x00, message, le=LE_ALL)).data

    def read_records(self, spec: FileSpec) -> Mapping[int, bytes]:
        """Every record of ``spec`` (``{}`` when none, or when its read key is
        not loaded yet); EXTERNAL AUTHENTICATE first, once, when its read needs it."""
        access = spec.read
        if access.kind == "auth" and access.kid is not None and access.kid not in self._authenticated:
            role = role_for_kid(access.kid) or KeyRole.RK
            if self.progress is not None and not self.progress.has_key(role):
                return {}
            challenge = self.session.get_challenge(8)
            cryptogram = self.keys.external_auth(role, challenge)
            self.session.send(CommandApdu(0x00, 0x82, 0x00, access.kid, cryptogram), context="key")
            self._authenticated.add(access.kid)
        if spec.sfi is None:
            return {}
        try:
            return dict(parse_records(self.session.read_all_raw(spec.sfi)))
        except RecordNotFound:
            return {}

    def read_certificate(self, spec: FileSpec) -> bytes | None:
        """The DER certificate in binary file ``spec`` (None when it holds none)."""
        head = self.session.read_binary_file(spec.fid, DER_HEADER)
        if len(head) < DER_HEADER or head[0] != 0x30 or head[1] != 0x82:
            return None
        total = DER_HEADER + int.from_bytes(head[2:4], "big")
        if total > spec.size:
            return None
        return self.session.read_binary_file(spec.fid, total)

    def life_cycle(self) -> LifeCycle:
        return self.session.life_cycle()
