"""The virtual social security card OS (docs/card-os.md).

:class:`CardOS` runs one :class:`card_model.image.CardImage` with the rules
of its profile and implements the :class:`emulator.vpcd.VirtualCard`
protocol.  ``process(apdu)`` parses the command, takes (and so consumes)
the pending challenge, checks CLA/INS (6E00/6D00), the life-cycle gate
(``data/lifecycle.toml``), runs the handler, and — when the handler changed
persistent state — commits the image to the store *before* answering, so a
tear after execution leaves the new state on disk.

Contact interface (T=0): a case-4 command sent without Le answers ``61xx``
and the data come with GET RESPONSE; answers longer than 256 bytes are
split the same way on both interfaces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from card_model.errors import ImageError, ProfileError
from card_model.image import CardImage
from card_model.keys import block_key
from card_model.profile import Profile, load_profile
from card_model.store import ImageStore
from emulator.card_os import (
    applications,
    data_objects,
    files,
    lifecycle,
    personalisation,
    pin,
    response,
    security,
    sm2_keys,
)
from emulator.card_os.command import Command, parse_command
from emulator.card_os.session import Session
from emulator.card_os.sw import (
    SW_CLA_NOT_SUPPORTED,
    SW_INS_NOT_SUPPORTED,
    SW_MEMORY_FAILURE,
    SW_SECURITY_STATUS,
    CardStatus,
)
from emulator.card_os.tables import Gate, command_table, gates
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.sm2 import Sm2PrivateKey

__all__ = ["CardOS", "Interface"]

log = logging.getLogger("sscard.emulator.card_os")

Interface = Literal["contact", "contactless"]
Handler = Callable[["CardOS", Command], bytes]

_HANDLERS: dict[str, Handler] = {
    "select": files.select,
    "read_record": files.read_record,
    "read_binary": files.read_binary,
    "update_record": files.update_record,
    "update_binary": files.update_binary,
    "get_challenge": security.get_challenge,
    "external_auth": security.external_authenticate,
    "internal_auth": security.internal_authenticate,
    "verify": pin.verify,
    "change_pin": pin.change_pin,
    "reload_pin": pin.reload_pin,
    "unblock_pin": pin.unblock_pin,
    "activate": lifecycle.activate,
    "app_block": lifecycle.app_block,
    "app_unblock": lifecycle.app_unblock,
    "card_block": lifecycle.card_block,
    "get_data": data_objects.get_data,
    "generate_key_pair": sm2_keys.generate_key_pair,
    "read_public_key": sm2_keys.read_public_key,
    "write_key": personalisation.write_key,
}
# the wallet, the financial application and the park ticket rule (issue 9): new
# handlers, and SELECT / READ RECORD / UPDATE RECORD wrapped to route by application
_HANDLERS.update(applications.HANDLERS)


class CardOS:
    """A virtual card running ``image``.

    ``store``: where committed state goes (``card_model.store.CardStore`` or
    ``MemoryStore``); None keeps the state in memory only.  ``interface``
    picks the ATR and the T=0 (contact) or T=1 (contactless) behaviour.
    ``profile``: defaults to the built-in profile named by the image.
    """

    def __init__(
        self,
        image: CardImage,
        *,
        store: ImageStore | None = None,
        interface: Interface = "contact",
        profile: Profile | None = None,
    ) -> None:
        self.image = image
        self.store = store
        self.profile = profile if profile is not None else load_profile(image.profile)
        self.interface: Interface = interface
        if interface == "contactless" and self.profile.atr.contactless is None:
            raise ProfileError("profile", "inconsistent", f"{self.profile.name} has no contactless interface")
        self._check_image()
        self.session = Session()
        self.challenge: bytes | None = None
        self._dirty = False
        self._keys: dict[int, Sm4Key | TdesKey] = {}
        self._sign_key: Sm2PrivateKey | None = None
        self._commands = command_table()
        self._known_ins = frozenset(ins for _, ins in self._commands)
        self._gates = gates()

    def __repr__(self) -> str:
        return f"CardOS({self.profile.name}, {self.interface}, life_cycle={self.image.life_cycle.label})"

    def _check_image(self) -> None:
        for spec in self.profile.files:
            table = self.image.record_files if spec.kind == "records" else self.image.binary_files
            if spec.fid not in table:
                raise ImageError(
                    "image", "inconsistent", f"{spec.name} missing for profile {self.profile.name}"
                )

    # -- VirtualCard -----------------------------------------------------------------

    def atr(self) -> bytes:
        atrs = self.profile.atr
        if self.interface == "contactless" and atrs.contactless is not None:
            return atrs.contactless
        return atrs.contact

    def power_on(self) -> None:
        self._clear_session()

    def power_off(self) -> None:
        self._clear_session()

    def reset(self) -> None:
        self._clear_session()

    def _clear_session(self) -> None:
        self.session.clear()
        self.challenge = None

    def process(self, apdu: bytes) -> bytes:
        session = self.session
        self.challenge = session.challenge
        session.challenge = None
        pending = session.pending
        session.pending = b""
        try:
            data, sw = self._execute(parse_command(bytes(apdu)), pending)
        except CardStatus as status:
            data, sw = status.data, status.sw
        if self._dirty:
            sw = self._commit(sw)
            if sw == SW_MEMORY_FAILURE:
                data = b""
        self.challenge = None
        return data + sw.to_bytes(2, "big")

    # -- helpers for the handlers ----------------------------------------------------------

    @property
    def gate(self) -> Gate:
        return self._gates[self.image.life_cycle]

    def touch(self) -> None:
        """Mark persistent state as changed: committed before the answer."""
        self._dirty = True

    def key_object(self, kid: int) -> Sm4Key | TdesKey:
        key = self._keys.get(kid)
        if key is None:
            state = self.image.keys[kid]
            key = block_key(state.algorithm, state.value)
            self._keys[kid] = key
        return key

    def forget_key(self, kid: int) -> None:
        """Drop the cached key object of ``kid`` (after WRITE KEY replaced the key)."""
        self._keys.pop(kid, None)

    def sign_key(self) -> Sm2PrivateKey | None:
        if self._sign_key is None and self.image.sm2_sign_key is not None:
            self._sign_key = Sm2PrivateKey.from_bytes(self.image.sm2_sign_key)
        return self._sign_key

    def forget_sign_key(self) -> None:
        self._sign_key = None

    # -- dispatch ----------------------------------------------------------------------------

    def _execute(self, cmd: Command, pending: bytes) -> tuple[bytes, int]:
        definition = self._commands.get((cmd.cla, cmd.ins))
        if definition is None or (definition.sm2 and not self.profile.sm2):
            raise CardStatus(self._unknown_status(cmd))
        gate = self.gate
        if not gate.permits(lifecycle.gate_name(definition.name, cmd)):
            raise CardStatus(gate.refuse)
        if definition.name == "get_response":
            data, sw, self.session.pending = response.get_response(cmd, pending)
            return data, sw
        result = _HANDLERS[definition.name](self, cmd)
        data, sw, self.session.pending = response.shape(result, cmd, self.interface == "contact")
        return data, sw

    def _unknown_status(self, cmd: Command) -> int:
        sm_variant = self._commands.get((cmd.cla | 0x04, cmd.ins))
        if (
            sm_variant is not None
            and sm_variant.sm
            and not cmd.cla & 0x04
            and (self.profile.sm2 or not sm_variant.sm2)
        ):
            return SW_SECURITY_STATUS
        known = any(
            ins == cmd.ins and (self.profile.sm2 or not d.sm2) for (_, ins), d in self._commands.items()
        )
        return SW_CLA_NOT_SUPPORTED if known else SW_INS_NOT_SUPPORTED

    def _commit(self, sw: int) -> int:
        self._dirty = False
        self.image.revision += 1
        if self.store is None:
            return sw
        try:
            self.store.commit(self.image)
        except OSError as exc:
            log.error("card image commit failed: %s", type(exc).__name__)
            return SW_MEMORY_FAILURE
        return sw
