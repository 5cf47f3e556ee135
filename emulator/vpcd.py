"""Attach a virtual card to a vsmartcard ``vpcd`` slot over TCP.

vpcd (the PC/SC driver loaded by pcscd) listens on TCP 35963+N for slot N; the
virtual card connects to it.  Every message in both directions is a 2-byte
big-endian length followed by the payload.  A 1-byte message from vpcd is a
control code (power off / on / reset / ATR request); anything longer is a
command APDU.  Closing the socket removes the card from the reader.

Latency: vpcd writes the length and the body with two separate ``send`` calls,
so with Nagle on its side the body waits for our ACK of the length; a Linux
receiver delays that ACK by up to 40 ms.  We set ``TCP_QUICKACK`` before every
read (Linux clears it again after use) and ``TCP_NODELAY`` for our own single
``sendall`` per answer, which brings a round trip close to the loopback limit.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Protocol

log = logging.getLogger("sscard.emulator.vpcd")

VPCD_BASE_PORT = 35963
CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04


class VirtualCard(Protocol):
    """What a vpcd slot needs from a card OS."""

    def atr(self) -> bytes: ...

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


class CardWrapper:
    """A virtual card that delegates everything to ``card`` (replaceable in
    place: a new card OS with the same ATR, without pulling the card).
    Subclasses override :meth:`process` to observe or disturb commands."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    def atr(self) -> bytes:
        return self.card.atr()

    def power_on(self) -> None:
        self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)


class Tear(Exception):
    """Raised by a card's ``process`` to pull the card out without answering."""


class VpcdConnectionError(Exception):
    """vpcd could not be reached on the slot's port within the deadline."""


def slot_port(slot: int) -> int:
    if not 0 <= slot < 64:
        raise ValueError(f"vpcd slot must be 0..63, got {slot}")
    return VPCD_BASE_PORT + slot


class VpcdLink:
    """One card inserted in one vpcd slot, served by a background thread."""

    def __init__(self, card: VirtualCard, slot: int = 0, host: str = "127.0.0.1") -> None:
        self.card = card
        self.slot = slot
        self.host = host
        self.port = slot_port(slot)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.apdu_count = 0

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, timeout: float = 10.0) -> None:
        """Connect to vpcd (the card appears in the reader)."""
        with self._lock:
            if self._sock is not None:
                return
            deadline = time.monotonic() + timeout
            last: OSError | None = None
            while True:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=1.0)
                    break
                except OSError as exc:
                    last = exc
                    if time.monotonic() >= deadline:
                        raise VpcdConnectionError(
                            f"vpcd slot {self.slot} (port {self.port}) not reachable: {last}"
                        ) from exc
                    time.sleep(0.05)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-slot{self.slot}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Close the socket (the card disappears from the reader)."""
        with self._lock:
            sock, self._sock = self._sock, None
            thread, self._thread = self._thread, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def __enter__(self) -> VpcdLink:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- serving -------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        quickack = getattr(socket, "TCP_QUICKACK", None)
        try:
            while True:
                message = self._read_message(sock, quickack)
                if message is None:
                    break
                answer = self._handle(message)
                if answer is not None:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
        except Tear:
            log.info("slot %d: card torn out", self.slot)
        except OSError as exc:
            log.debug("slot %d: connection ended: %s", self.slot, exc)
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
            try:
                sock.close()
            except OSError:
                pass

    def _read_message(self, sock: socket.socket, quickack: int | None) -> bytes | None:
        header = self._read_exact(sock, 2, quickack)
        if header is None:
            return None
        (length,) = struct.unpack(">H", header)
        body = self._read_exact(sock, length, quickack) if length else b""
        return body

    @staticmethod
    def _read_exact(sock: socket.socket, n: int, quickack: int | None) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            code = message[0]
            if code == CTRL_ATR:
                return self.card.atr()
            if code == CTRL_ON:
                self.card.power_on()
            elif code == CTRL_OFF:
                self.card.power_off()
            elif code == CTRL_RESET:
                self.card.reset()
            else:
                log.warning("slot %d: unknown vpcd control code %02X", self.slot, code)
            return None
        self.apdu_count += 1
        return self.card.process(message)
