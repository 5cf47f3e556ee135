"""The virtual PSAM: master keys in a second slot (docs/card-os.md §9).

Commands (after ``SELECT 00 A4 04 00 <AID>`` of the SSPSAM application;
before it INIT and CIPHER answer 6985):

* ``00 B0 96 00 06``: EF16, the terminal number (BCD), readable any time;
* ``80 1A 00 KID 08 <d>``: INIT FOR DESCRYPT, derive the card key of master
  KID with factor d into the session (never output); 6A88 unknown KID;
* ``80 FA 00 00 Lc <challenge>``: external-auth cryptogram ``E(K, iv(ch))``;
* ``80 FA 05 00 Lc <iv 16> <message>``: 4-byte MAC (SM4 CBC-MAC, or the
  retail MAC for 3DES, which uses the first 8 IV bytes);
* ``80 FA 08 00 Lc <r> <card answer>``: 9000 if ``E(K, r)`` equals the
  answer, 6300 if not;
* ``80 FA 10 00 01 <target KID>``: ``E(KTK_card, pad_m2(len || K_target))``
  (ECB), the session key being the card's KTK and the target master in the
  same algorithm set, diversified with the same factor;
* ``80 FA 11 00 Lc <iv 16> <P1> <P2> [PIN block]``: the whole data field of
  the card's ``WRITE KEY 84 D4 P1 P2`` (``card_model.keyload``): cryptogram
  and MAC with the card's KTK; P1 00 loads the card key of KID P2, P1 01 the
  PIN block given (packed BCD).  The MAC covers the header the PSAM builds
  itself, so a body made for one key slot cannot load another.

A CIPHER whose session key lacks the usage answers 6985 (the terminal
reports -24); no session (no INIT) answers 6985 too.  The PSAM's image is
read-only at run time (no command changes it).
"""

from __future__ import annotations

import hmac
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from card_model.errors import KeyLoadError
from card_model.keyload import TARGET_KEY, TARGET_PIN, write_key_body
from card_model.keys import block_key, role_for_kid
from card_model.psam_image import PsamImage, PsamKey, psam_kid
from emulator.card_os import response
from emulator.card_os.command import Command, parse_command
from emulator.card_os.security import KeyMac
from emulator.card_os.sw import (
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS,
    SW_DATA_NOT_FOUND,
    SW_END_OF_FILE,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_MISMATCH,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    SW_WRONG_OFFSET,
    SW_WRONG_P1P2,
    CardStatus,
)
from emulator.psam.purse import PURSE_CIPHERS
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.diversify import diversify
from sm_crypto.padding import Padding

__all__ = ["PsamCard"]

FACTOR_LENGTH = 8
IV_FIELD = 16
MIN_CHALLENGE = 4


@cache
def _config() -> dict[str, Any]:
    text = resources.files("emulator.psam").joinpath("data", "psam.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(slots=True)
class _Session:
    selected: bool = False
    master: PsamKey | None = None
    factor: bytes = field(default=b"", repr=False)
    card_key: Sm4Key | TdesKey | None = field(default=None, repr=False)
    pending: bytes = field(default=b"", repr=False)

    def clear(self) -> None:
        self.selected = False
        self.master = None
        self.factor = b""
        self.card_key = None
        self.pending = b""


class PsamCard:
    """A virtual PSAM running ``image`` (a :class:`card_model.psam_image.PsamImage`)."""

    def __init__(self, image: PsamImage) -> None:
        self.image = image
        config = _config()
        self._atr = bytes.fromhex(config["atr"])
        self._aid = bytes.fromhex(config["aid"])
        self._ef16_fid = int(config["ef16"]["fid"], 16)
        self._ef16_sfi = int(config["ef16"]["sfi"])
        self._cipher = {int(p1, 16): row for p1, row in config["cipher"].items()}
        self._session = _Session()

    def __repr__(self) -> str:
        return f"PsamCard(terminal={self.image.terminal_number_text}, keys={len(self.image.keys)})"

    # -- VirtualCard ---------------------------------------------------------------------

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> None:
        self._session.clear()

    def power_off(self) -> None:
        self._session.clear()

    def reset(self) -> None:
        self._session.clear()

    def process(self, apdu: bytes) -> bytes:
        pending = self._session.pending
        self._session.pending = b""
        try:
            cmd = parse_command(bytes(apdu))
            data, sw = self._execute(cmd, pending)
        except CardStatus as status:
            data, sw = status.data, status.sw
        return data + sw.to_bytes(2, "big")

    # -- dispatch ------------------------------------------------------------------------------

    def _execute(self, cmd: Command, pending: bytes) -> tuple[bytes, int]:
        handlers = {
            (0x00, 0xA4): self._select,
            (0x00, 0xB0): self._read_binary,
            (0x80, 0x1A): self._init_for_descrypt,
            (0x80, 0xFA): self._cipher_command,
        }
        if (cmd.cla, cmd.ins) == (0x00, 0xC0):
            data, sw, self._session.pending = response.get_response(cmd, pending)
            return data, sw
        handler = handlers.get((cmd.cla, cmd.ins))
        if handler is None:
            known = cmd.ins in {ins for _, ins in handlers} or cmd.ins == 0xC0
            raise CardStatus(SW_CLA_NOT_SUPPORTED if known else SW_INS_NOT_SUPPORTED)
        result = handler(cmd)
        data, sw, self._session.pending = response.shape(result, cmd, True)
        return data, sw

    def _select(self, cmd: Command) -> bytes:
        if cmd.p2 not in (0x00, 0x0C):
            raise CardStatus(SW_WRONG_P1P2)
        if cmd.p1 == 0x04:
            if cmd.data != self._aid:
                raise CardStatus(SW_FILE_NOT_FOUND)
            self._session.selected = True
            if cmd.p2 == 0x0C:
                return b""
            return bytes((0x6F, len(self._aid) + 2, 0x84, len(self._aid))) + self._aid
        if cmd.p1 in (0x00, 0x02):
            if len(cmd.data) != 2:
                raise CardStatus(SW_WRONG_LENGTH)
            if int.from_bytes(cmd.data, "big") != self._ef16_fid:
                raise CardStatus(SW_FILE_NOT_FOUND)
            return b""
        raise CardStatus(SW_WRONG_P1P2)

    def _read_binary(self, cmd: Command) -> bytes:
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x1F != self._ef16_sfi or cmd.p1 & 0x60:
                raise CardStatus(SW_FILE_NOT_FOUND)
            offset = cmd.p2
        else:
            offset = ((cmd.p1 & 0x7F) << 8) | cmd.p2
        content = self.image.terminal_number
        if offset >= len(content):
            raise CardStatus(SW_WRONG_OFFSET)
        rest = content[offset:]
        if cmd.le is None or cmd.le >= response.SHORT_MAX:
            return rest
        if cmd.le > len(rest):
            raise CardStatus(SW_END_OF_FILE, rest)
        return rest[: cmd.le]

    def _init_for_descrypt(self, cmd: Command) -> bytes:
        session = self._session
        if not session.selected:
            raise CardStatus(SW_CONDITIONS)
        if cmd.p1:
            raise CardStatus(SW_WRONG_P1P2)
        master = self.image.keys.get(cmd.p2)
        if master is None:
            raise CardStatus(SW_DATA_NOT_FOUND)
        if len(cmd.data) != FACTOR_LENGTH:
            raise CardStatus(SW_WRONG_LENGTH)
        raw = diversify(block_key(master.algorithm, master.value), cmd.data)
        session.master = master
        session.factor = cmd.data
        session.card_key = block_key(master.algorithm, raw)
        return b""

    def _cipher_command(self, cmd: Command) -> bytes:
        session = self._session
        if not session.selected:
            raise CardStatus(SW_CONDITIONS)
        row = self._cipher.get(cmd.p1)
        if row is None or cmd.p2:
            raise CardStatus(SW_WRONG_P1P2)
        master, key = session.master, session.card_key
        if master is None or key is None:
            raise CardStatus(SW_CONDITIONS)
        if row["usage"] not in master.usage:
            raise CardStatus(SW_CONDITIONS)
        name = row["name"]
        if name == "external_auth":
            return self._external_auth(key, cmd.data)
        if name == "mac":
            return self._mac(key, cmd.data)
        if name == "verify_internal_auth":
            return self._verify_internal_auth(key, cmd.data)
        if name == "write_key_body":
            return self._write_key_body(master, key, cmd.data)
        purse_cipher = PURSE_CIPHERS.get(name)  # the wallet (issue 9, emulator/psam/purse.py)
        if purse_cipher is not None:
            return purse_cipher(master, session.factor, cmd.data)
        return self._wrap_key(master, key, cmd.data)

    @staticmethod
    def _external_auth(key: Sm4Key | TdesKey, challenge: bytes) -> bytes:
        if not MIN_CHALLENGE <= len(challenge) <= key.block_size:
            raise CardStatus(SW_WRONG_LENGTH)
        return key.encrypt_ecb(challenge.ljust(key.block_size, b"\x00"))

    @staticmethod
    def _mac(key: Sm4Key | TdesKey, data: bytes) -> bytes:
        if len(data) < IV_FIELD:
            raise CardStatus(SW_WRONG_LENGTH)
        iv = data[: key.block_size]
        return KeyMac(key).mac(data[IV_FIELD:], iv)[:4]

    @staticmethod
    def _verify_internal_auth(key: Sm4Key | TdesKey, data: bytes) -> bytes:
        size = key.block_size
        if len(data) != 2 * size:
            raise CardStatus(SW_WRONG_LENGTH)
        expected = key.encrypt_ecb(data[:size])
        if not hmac.compare_digest(expected, data[size:]):
            raise CardStatus(SW_MISMATCH)
        return b""

    def _card_key_of(self, master: PsamKey, kid: int) -> bytes:
        """The target card key of card KID ``kid``, from the session key's algorithm set."""
        role = role_for_kid(kid)
        target = None if role is None else self.image.keys.get(psam_kid(role, master.algorithm))
        if target is None or role is master.role:
            raise CardStatus(SW_DATA_NOT_FOUND)
        return diversify(block_key(target.algorithm, target.value), self._session.factor)

    def _wrap_key(self, master: PsamKey, key: Sm4Key | TdesKey, data: bytes) -> bytes:
        if len(data) != 1:
            raise CardStatus(SW_WRONG_LENGTH)
        card_target = self._card_key_of(master, data[0])
        return key.encrypt_ecb(bytes((len(card_target),)) + card_target, Padding.ISO9797_M2)

    def _write_key_body(self, master: PsamKey, key: Sm4Key | TdesKey, data: bytes) -> bytes:
        """``iv (16) || P1 P2 [|| PIN block]`` -> the WRITE KEY data field (cryptogram || MAC)."""
        if len(data) < IV_FIELD + 2:
            raise CardStatus(SW_WRONG_LENGTH)
        iv, p1, p2, rest = data[: key.block_size], data[IV_FIELD], data[IV_FIELD + 1], data[IV_FIELD + 2 :]
        if p1 == TARGET_KEY:
            if rest:
                raise CardStatus(SW_WRONG_LENGTH)
            secret = self._card_key_of(master, p2)
        elif p1 == TARGET_PIN:
            secret = rest
        else:
            raise CardStatus(SW_WRONG_P1P2)
        try:
            return write_key_body(key, iv, p1, p2, secret)
        except KeyLoadError:
            raise CardStatus(SW_WRONG_DATA) from None
