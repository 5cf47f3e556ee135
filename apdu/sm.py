"""Secure messaging as the social security cards use it (docs/card-os.md §3).

Command MAC::

    CLA' = CLA | 04
    Lc'  = len(data') + 4                    (data' = data, or encrypt(data))
    MAC  = first 4 bytes of CBC-MAC(K, iv(challenge), CLA' INS P1 P2 Lc' || data')
    command = CLA' INS P1 P2 Lc' data' MAC [Le]

with ISO 9797-1 method-2 padding done by the MAC provider (SM4 CBC-MAC for
generation 3, ISO 9797-1 algorithm 3 for generation 2).  This layer never
holds a key: a :class:`MacProvider` (PSAM, security module or a local key for
tests and the emulator) computes the MAC over the bytes built here, and an
optional ``encrypt`` callable encrypts the data field.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from apdu.command import SHORT_MAX_DATA, CommandApdu
from apdu.errors import ProtocolError, SecureMessagingError
from apdu.protocol import ApduProtocol
from apdu.response import ResponseApdu
from apdu.status import Context

__all__ = [
    "MAC_LENGTH",
    "SM_CLA_BIT",
    "ChallengeSource",
    "MacProvider",
    "SecureChannel",
    "card_challenge",
    "iv_from_challenge",
    "mac_input",
    "strip_mac",
    "verify_command_mac",
    "verify_response_mac",
    "wrap_command",
]

MAC_LENGTH = 4
SM_CLA_BIT = 0x04
INS_GET_CHALLENGE = 0x84


@runtime_checkable
class MacProvider(Protocol):
    """Computes a MAC over ``message`` with initial vector ``iv``, doing the
    padding and chaining itself.  Returns at least 4 bytes (the first 4 are used)."""

    def mac(self, message: bytes, iv: bytes) -> bytes: ...


ChallengeSource = Callable[[], bytes]


def iv_from_challenge(challenge: bytes, block_size: int = 16) -> bytes:
    """The challenge right-padded with zeros to the cipher block size (16 SM4, 8 3DES)."""
    if block_size not in (8, 16):
        raise ProtocolError(f"secure messaging: block size must be 8 or 16, got {block_size}")
    if not challenge or len(challenge) > block_size:
        raise ProtocolError(
            f"secure messaging: a {len(challenge)}-byte challenge does not fit a {block_size}-byte IV"
        )
    return bytes(challenge).ljust(block_size, b"\x00")


def _lc_field(n: int) -> bytes:
    if n <= SHORT_MAX_DATA:
        return bytes((n,))
    return b"\x00" + n.to_bytes(2, "big")


def mac_input(cmd: CommandApdu) -> bytes:
    """The MAC'ed bytes of an SM command as sent (data ends with the MAC):
    ``CLA INS P1 P2 Lc || data without the MAC``.  Card and terminal both use it."""
    if not cmd.secure_messaging:
        raise ProtocolError(f"secure messaging: CLA {cmd.cla:02X} lacks the SM bit 04")
    if len(cmd.data) < MAC_LENGTH:
        raise ProtocolError(f"secure messaging: {len(cmd.data)} data bytes cannot hold a 4-byte MAC")
    return cmd.header + _lc_field(len(cmd.data)) + cmd.data[:-MAC_LENGTH]


def _first_mac_bytes(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) < MAC_LENGTH:
        raise ProtocolError("secure messaging: the MAC provider returned fewer than 4 bytes")
    return bytes(value[:MAC_LENGTH])


def wrap_command(
    cmd: CommandApdu,
    iv: bytes,
    mac: MacProvider,
    *,
    encrypt: Callable[[bytes], bytes] | None = None,
) -> CommandApdu:
    """Return ``cmd`` protected with a command MAC (and encrypted data when
    ``encrypt`` is given)."""
    if cmd.cla & 0x40:
        raise ProtocolError(
            f"secure messaging: CLA {cmd.cla:02X} is not a first inter-industry or proprietary CLA"
        )
    data = cmd.data
    if encrypt is not None and data:
        data = bytes(encrypt(data))
    placeholder = bytes(MAC_LENGTH)
    draft = replace(cmd, cla=cmd.cla | SM_CLA_BIT, data=data + placeholder, extended=None)
    tag = _first_mac_bytes(mac.mac(mac_input(draft), bytes(iv)))
    return replace(draft, data=data + tag, extended=None)


def strip_mac(cmd: CommandApdu) -> tuple[bytes, bytes]:
    """Split an SM command's data into ``(data', mac)``."""
    mac_input(cmd)  # validates
    return cmd.data[:-MAC_LENGTH], cmd.data[-MAC_LENGTH:]


def verify_command_mac(cmd: CommandApdu, iv: bytes, mac: MacProvider) -> bytes:
    """Card side: check the MAC of a received SM command and return ``data'``.
    Raises :class:`SecureMessagingError` (6988) on mismatch."""
    data, received = strip_mac(cmd)
    expected = _first_mac_bytes(mac.mac(mac_input(cmd), bytes(iv)))
    if not hmac.compare_digest(expected, received):
        raise SecureMessagingError(0x6988, "command MAC mismatch")
    return data


def verify_response_mac(
    response: ResponseApdu,
    iv: bytes,
    mac: MacProvider,
    *,
    include_sw: bool = False,
) -> bytes:
    """Check a response whose data end with a 4-byte MAC over the preceding
    data (and SW1 SW2 when ``include_sw``); return the data without the MAC.
    A mismatch raises :class:`SecureMessagingError` with national code -15
    (check value error) and no SW (the card answered success)."""
    if len(response.data) < MAC_LENGTH:
        raise ProtocolError(f"response MAC: {len(response.data)} data bytes cannot hold a 4-byte MAC")
    payload, received = response.data[:-MAC_LENGTH], response.data[-MAC_LENGTH:]
    message = payload + (response.sw.to_bytes(2, "big") if include_sw else b"")
    expected = _first_mac_bytes(mac.mac(message, bytes(iv)))
    if not hmac.compare_digest(expected, received):
        err = SecureMessagingError("response MAC mismatch", national_code=-15)
        err.sw = None
        raise err
    return payload


def card_challenge(protocol: ApduProtocol, length: int = 4) -> ChallengeSource:
    """A challenge source asking the card: ``GET CHALLENGE 00 84 00 00 <length>``."""
    if length not in (4, 8, 16):
        raise ProtocolError(f"GET CHALLENGE: length must be 4, 8 or 16, got {length}")

    def get() -> bytes:
        response = protocol.send(CommandApdu(0x00, INS_GET_CHALLENGE, 0x00, 0x00, le=length))
        if len(response.data) != length:
            raise ProtocolError(f"GET CHALLENGE: {len(response.data)} bytes answered, {length} asked")
        return response.data

    return get


class SecureChannel:
    """Sends commands under command-MAC secure messaging: each :meth:`send`
    fetches a fresh challenge, derives the IV, wraps the command and sends it
    (SW mapping with context "key").  ``send_plain`` passes a command through."""

    def __init__(
        self,
        protocol: ApduProtocol,
        mac: MacProvider,
        *,
        challenge: ChallengeSource | None = None,
        block_size: int = 16,
        encrypt: Callable[[bytes], bytes] | None = None,
    ) -> None:
        if block_size not in (8, 16):
            raise ProtocolError(f"secure messaging: block size must be 8 or 16, got {block_size}")
        self.protocol = protocol
        self.mac = mac
        self.challenge = challenge or card_challenge(protocol)
        self.block_size = block_size
        self.encrypt = encrypt

    def wrap(self, cmd: CommandApdu, *, encrypt: bool = False) -> CommandApdu:
        iv = iv_from_challenge(self.challenge(), self.block_size)
        if encrypt and self.encrypt is None:
            raise ProtocolError("secure messaging: encryption asked but no encrypt function configured")
        return wrap_command(cmd, iv, self.mac, encrypt=self.encrypt if encrypt else None)

    def send(
        self,
        cmd: CommandApdu,
        *,
        encrypt: bool = False,
        context: Context | None = "key",
        check: bool = True,
    ) -> ResponseApdu:
        with self.protocol.transaction():
            wrapped = self.wrap(cmd, encrypt=encrypt)
            return self.protocol.send(wrapped, context=context, check=check)

    def send_plain(
        self, cmd: CommandApdu, *, context: Context | None = None, check: bool = True
    ) -> ResponseApdu:
        return self.protocol.send(cmd, context=context, check=check)
