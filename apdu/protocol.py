"""ISO 7816-4 protocol handling on top of any :class:`~apdu.transport.Transport`.

- T=0 ``61xx``: GET RESPONSE (``00 C0 00 00 xx``) until the card has no more
  data, concatenating the pieces.
- ``6Cxx``: the same command is re-sent once with Le = xx (the card did not
  execute it).
- Command chaining (CLA bit ``10``) when the data exceed 255 bytes and the
  card does not take extended-length APDUs.
- Automatic retry only for idempotent commands (``data/commands.toml``) after
  a transient transport failure; anything that may have executed is never
  re-sent: the error is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import cache

from apdu._tables import command_in_table, load_table
from apdu.command import SHORT_MAX_DATA, SHORT_MAX_LE, CommandApdu
from apdu.errors import (
    CardResetError,
    NoCardError,
    PcscUnavailableError,
    ProtocolError,
    ReaderTimeoutError,
    SharingViolationError,
    TransportError,
)
from apdu.response import ResponseApdu
from apdu.status import Context, infer_context
from apdu.trace import Tracer
from apdu.transport import Transport

__all__ = ["CHAINING_BIT", "ApduProtocol", "is_idempotent"]

CHAINING_BIT = 0x10

_NOT_TRANSIENT = (
    NoCardError,
    CardResetError,
    SharingViolationError,
    PcscUnavailableError,
)


@cache
def _config() -> dict[str, dict[str, object]]:
    return load_table("commands")


def is_idempotent(cmd: CommandApdu) -> bool:
    """Whether re-sending ``cmd`` after a link failure is harmless."""
    return command_in_table("idempotent", cmd.cla, cmd.ins)


def _limit(name: str) -> int:
    value = _config()["limits"][name]
    assert isinstance(value, int)
    return value


def _is_transient(exc: TransportError) -> bool:
    if isinstance(exc, _NOT_TRANSIENT):
        return False
    return type(exc) is TransportError or isinstance(exc, ReaderTimeoutError)


class ApduProtocol:
    """Sends :class:`CommandApdu` objects and returns complete responses.

    ``extended_length``: the card accepts extended-length APDUs (otherwise
    long data are chained and a Le above 256 is requested as ``00`` with the
    rest fetched by GET RESPONSE).
    """

    def __init__(
        self,
        transport: Transport,
        tracer: Tracer | None = None,
        *,
        extended_length: bool = False,
    ) -> None:
        self.transport = transport
        self.tracer = tracer
        self.extended_length = extended_length
        self._lock = threading.RLock()
        gr = _config()["get_response"]
        self._gr_ins = int(str(gr["ins"]), 16)
        self._gr_cla = int(str(gr["cla"]), 16)

    # -- public API ----------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        return self.transport.transaction()

    def send(
        self,
        cmd: CommandApdu,
        *,
        context: Context | None = None,
        check: bool = True,
        accept: Collection[int] = (),
    ) -> ResponseApdu:
        """Send ``cmd`` with all protocol handling; with ``check`` raise the
        mapped card error unless the SW is 9000 or in ``accept``.  The
        context for the mapping defaults to one inferred from CLA/INS."""
        with self._lock:
            response = self._send(cmd)
        if check:
            response.check(context or infer_context(cmd.cla, cmd.ins), accept=accept)
        return response

    def send_raw(self, raw: bytes, *, auto_response: bool = True) -> bytes:
        """Send an encoded command (strictly decoded first, so that the trace
        can apply the redaction policy); returns the encoded response.  With
        ``auto_response`` 61xx/6Cxx are handled as for :meth:`send`."""
        cmd = CommandApdu.decode(raw)
        with self._lock:
            if auto_response:
                return self._send(cmd).encode()
            return self._exchange(cmd).encode()

    # -- internals -----------------------------------------------------------

    def _send(self, cmd: CommandApdu) -> ResponseApdu:
        if len(cmd.data) > SHORT_MAX_DATA and not self.extended_length:
            return self._send_chained(cmd)
        if cmd.extended and not self.extended_length:
            # Data fit a short APDU; ask for 256 and collect the rest via 61xx.
            cmd = replace(cmd, le=SHORT_MAX_LE if cmd.le is not None else None, extended=False)
        return self._complete(cmd, cmd)

    def _send_chained(self, cmd: CommandApdu) -> ResponseApdu:
        if cmd.secure_messaging:
            raise ProtocolError(
                f"command {cmd.cla:02X} {cmd.ins:02X}: {len(cmd.data)} data bytes under secure "
                "messaging cannot be chained; split the write at the application level"
            )
        if cmd.cla & 0x80 and cmd.cla & CHAINING_BIT:
            raise ProtocolError(f"command CLA {cmd.cla:02X} already has the chaining bit")
        block = _limit("chain_block")
        chunks = [cmd.data[i : i + block] for i in range(0, len(cmd.data), block)]
        for chunk in chunks[:-1]:
            part = CommandApdu(
                cmd.cla | CHAINING_BIT,
                cmd.ins,
                cmd.p1,
                cmd.p2,
                chunk,
                None,
                False,
                cmd.sensitive,
            )
            response = self._complete(part, cmd)
            if response.sw != 0x9000:
                return response
        last = CommandApdu(
            cmd.cla,
            cmd.ins,
            cmd.p1,
            cmd.p2,
            chunks[-1],
            min(cmd.le, SHORT_MAX_LE) if cmd.le is not None else None,
            False,
            cmd.sensitive,
        )
        return self._complete(last, cmd)

    def _complete(self, cmd: CommandApdu, origin: CommandApdu) -> ResponseApdu:
        """One command with 6Cxx re-send and the 61xx GET RESPONSE loop."""
        response = self._exchange(cmd, origin)
        if response.sw1 == 0x6C:
            cmd = cmd.with_le(response.sw2 or SHORT_MAX_LE)
            response = self._exchange(cmd, origin)
        data = bytearray(response.data)
        rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if rounds > _limit("max_get_response"):
                raise ProtocolError("GET RESPONSE loop: the card keeps answering 61xx")
            get = CommandApdu(
                self._gr_cla | (cmd.cla & 0x03),
                self._gr_ins,
                0,
                0,
                b"",
                response.sw2 or SHORT_MAX_LE,
            )
            response = self._exchange(get, origin)
            if response.sw1 == 0x6C:
                response = self._exchange(get.with_le(response.sw2 or SHORT_MAX_LE), origin)
            data += response.data
        return ResponseApdu(bytes(data), response.sw)

    def _exchange(self, cmd: CommandApdu, origin: CommandApdu | None = None) -> ResponseApdu:
        """One transmit (plus a safe retry for idempotent commands)."""
        origin = origin or cmd
        raw_cmd = cmd.encode()
        attempts = 1 + (_limit("transient_retries") if is_idempotent(cmd) else 0)
        for attempt in range(1, attempts + 1):
            if self.tracer is not None:
                self.tracer.command(cmd, redact_as=origin)
            try:
                raw = self.transport.transmit(raw_cmd)
            except TransportError as exc:
                if self.tracer is not None:
                    self.tracer.note(f"transport error: {exc.error_id}")
                if attempt < attempts and _is_transient(exc):
                    continue
                raise
            if self.tracer is not None:
                self.tracer.response(raw, cmd=origin if cmd.ins == self._gr_ins else cmd)
            return ResponseApdu.decode(raw)
        raise TransportError("transmit failed")  # unreachable: the loop returns or raises
