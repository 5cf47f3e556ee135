"""Key source over a PSAM in a reader slot (docs/card-os.md §9).

Per operation, in one PC/SC transaction on the PSAM:

    INIT FOR DESCRYPT   80 1A 00 KID 08 <factor>        derive the card key (stays in the PSAM)
    CIPHER external     80 FA 00 00 Lc <challenge>      -> cryptogram
    CIPHER MAC          80 FA 05 00 Lc <iv 16> <msg>    -> 4-byte MAC
    CIPHER verify IA    80 FA 08 00 Lc <r> <answer>     -> 9000 match / 6300 mismatch
    CIPHER WRITE KEY    80 FA 11 00 Lc <iv 16> <P1 P2> [PIN block]  -> cryptogram || MAC (KTK)

KID = the card KID of the role, + 0x20 for the 3DES (generation 1/2) master
keys.  Status words map to national codes: an unknown KID (6A88) is
``no_reading_key`` (-2203) for RK, ``no_algorithm`` (-2202) for a 3DES key
and ``key_level`` (-24) otherwise; a key without the usage (6985) is
``key_level`` (-24); no PSAM, an empty slot, a card that is not a PSAM or a
PSAM pulled out is ``no_psam`` (-2201).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from apdu.command import CommandApdu
from apdu.errors import (
    CardError,
    CardMuteError,
    KeySourceError,
    NoCardError,
    TransportError,
)
from apdu.protocol import ApduProtocol
from apdu.trace import Tracer
from apdu.transport import Transport
from card_model.keys import Algorithm, KeyRole
from card_model.psam_image import psam_kid
from terminal._data import load_data
from terminal.keysource.base import check_challenge, check_factor, check_iv
from terminal.keysource.loading import body_length, check_write_target
from terminal.keysource.purse import PsamPurseKeys
from terminal.link import GuardedTransport
from terminal.readers import classify, find_psam_reader

__all__ = ["PsamKeySource"]

log = logging.getLogger("sscard.keysource")

SW_OK = 0x9000
SW_MISMATCH = 0x6300
SW_NOT_FOUND = 0x6A88
IV_FIELD = 16
CIPHER_EXTERNAL = 0x00
CIPHER_MAC = 0x05
CIPHER_VERIFY_IA = 0x08
CIPHER_WRITE_KEY = 0x11


@cache
def _settings() -> dict[str, Any]:
    table: dict[str, Any] = load_data("keysource")["psam"]
    return table


class PsamKeySource:
    """:class:`~terminal.keysource.base.KeySource` over a PSAM (PC/SC or in-process)."""

    kind = "psam"

    def __init__(self, transport: Transport, *, tracer: Tracer | None = None) -> None:
        self._transport = transport
        self._protocol = ApduProtocol(GuardedTransport(transport, settle=0.5), tracer)
        self._terminal_number = ""
        # the wallet's cryptograms (issue 9, terminal/keysource/purse.py)
        self.purse = PsamPurseKeys(self._run)
        self._open()

    @classmethod
    def open(cls, reader: str | None = None, *, tracer: Tracer | None = None) -> PsamKeySource:
        """Open the PSAM in PC/SC reader ``reader`` (a full name), or find the
        reader holding a PSAM when None."""
        from apdu.pcsc import PcscTransport

        name = reader if reader is not None else find_psam_reader().name
        return cls(PcscTransport(name, dispose="reset"), tracer=tracer)

    def _open(self) -> None:
        try:
            self._transport.connect()
        except NoCardError as exc:
            raise KeySourceError(f"no PSAM in {self._transport.reader}", kind="no_psam") from exc
        except TransportError as exc:
            raise KeySourceError(
                f"PSAM reader {self._transport.reader}: {exc.error_id}", kind="no_psam"
            ) from exc
        kind, _ = classify(self._transport.reader, self._transport.atr)
        if kind != "psam":
            self._transport.disconnect()
            raise KeySourceError(f"the card in {self._transport.reader} is not a PSAM", kind="no_psam")
        settings = _settings()
        try:
            with self._transport.transaction():
                select = self._protocol.send(
                    CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex(settings["aid"]), le=256), check=False
                )
                if select.sw != SW_OK:
                    raise KeySourceError(
                        f"PSAM: SSPSAM application not found (SW {select.sw:04X})",
                        kind="no_psam",
                        sw=select.sw,
                    )
                ef16 = self._protocol.send(
                    CommandApdu(
                        0x00, 0xB0, 0x80 | int(settings["ef16_sfi"]), 0x00, le=int(settings["ef16_length"])
                    ),
                    check=False,
                )
        except NoCardError as exc:
            raise KeySourceError("the PSAM was removed", kind="no_psam") from exc
        except KeySourceError:
            self._transport.disconnect()
            raise
        if ef16.sw == SW_OK and ef16.data.hex().isdigit():
            self._terminal_number = ef16.data.hex()

    def __repr__(self) -> str:
        return f"PsamKeySource({self._transport.reader!r}, terminal={self._terminal_number or '?'})"

    @property
    def reader(self) -> str:
        return self._transport.reader

    @property
    def terminal_number(self) -> str:
        return self._terminal_number

    # -- operations ---------------------------------------------------------------

    def _run(
        self, role: KeyRole, algorithm: Algorithm, factor: bytes, p1: int, data: bytes
    ) -> tuple[bytes, int]:
        kid = psam_kid(role, algorithm)
        try:
            with self._transport.transaction():
                init = self._protocol.send(
                    CommandApdu(0x80, 0x1A, 0x00, kid, check_factor(factor)), check=False
                )
                if init.sw != SW_OK:
                    raise self._error(init.sw, role, algorithm, "INIT FOR DESCRYPT")
                answer = self._protocol.send(
                    CommandApdu(0x80, 0xFA, p1, 0x00, data, le=256, sensitive=True), check=False
                )
        except (NoCardError, CardMuteError) as exc:
            raise KeySourceError(
                f"the PSAM was removed or does not answer ({exc.error_id})", kind="no_psam"
            ) from exc
        except CardError as exc:
            raise self._error(exc.sw or 0, role, algorithm, "CIPHER") from exc
        if answer.sw not in (SW_OK, SW_MISMATCH):
            raise self._error(answer.sw, role, algorithm, "CIPHER")
        return answer.data, answer.sw

    @staticmethod
    def _error(sw: int, role: KeyRole, algorithm: Algorithm, what: str) -> KeySourceError:
        where = f"PSAM {what} for {algorithm.value} {role.value}: SW {sw:04X}"
        # 6985 (the key lacks the usage) and anything else: key level insufficient
        if sw == SW_NOT_FOUND:
            if role is KeyRole.RK:
                return KeySourceError(where, kind="no_reading_key", sw=sw)
            if algorithm is Algorithm.TDES:
                return KeySourceError(where, kind="no_algorithm", sw=sw)
            return KeySourceError(where, kind="key_level", sw=sw)
        return KeySourceError(where, kind="key_level", sw=sw)

    def external_auth(self, role: KeyRole, algorithm: Algorithm, factor: bytes, challenge: bytes) -> bytes:
        data, sw = self._run(role, algorithm, factor, CIPHER_EXTERNAL, check_challenge(challenge, algorithm))
        if sw != SW_OK or len(data) != algorithm.block_size:
            raise KeySourceError(
                "PSAM: malformed external-authentication cryptogram", kind="key_level", sw=sw
            )
        return data

    def mac(self, role: KeyRole, algorithm: Algorithm, factor: bytes, iv: bytes, message: bytes) -> bytes:
        field = check_iv(iv, algorithm).ljust(IV_FIELD, b"\x00")
        data, sw = self._run(role, algorithm, factor, CIPHER_MAC, field + bytes(message))
        if sw != SW_OK or len(data) < 4:
            raise KeySourceError("PSAM: malformed MAC answer", kind="key_level", sw=sw)
        return data[:4]

    def verify_internal_auth(
        self, algorithm: Algorithm, factor: bytes, challenge: bytes, response: bytes
    ) -> bool:
        size = algorithm.block_size
        if len(challenge) != size or len(response) != size:
            return False
        _, sw = self._run(
            KeyRole.IAK, algorithm, factor, CIPHER_VERIFY_IA, bytes(challenge) + bytes(response)
        )
        return sw == SW_OK

    def write_key_body(
        self, algorithm: Algorithm, factor: bytes, iv: bytes, p1: int, p2: int, pin_block: bytes = b""
    ) -> bytes:
        """``80 FA 11 00 Lc <iv 16> <P1 P2> [PIN block]`` after INIT with the KTK master."""
        check_write_target(p1, p2, pin_block)
        field = check_iv(iv, algorithm).ljust(IV_FIELD, b"\x00")
        data, sw = self._run(
            KeyRole.KTK, algorithm, factor, CIPHER_WRITE_KEY, field + bytes((p1, p2)) + bytes(pin_block)
        )
        if sw != SW_OK or len(data) != body_length(algorithm, p1, pin_block):
            raise KeySourceError("PSAM: malformed WRITE KEY body", kind="key_level", sw=sw)
        return data

    def close(self) -> None:
        try:
            self._transport.disconnect()
        except TransportError as exc:
            log.debug("PSAM disconnect: %s", exc.error_id)
