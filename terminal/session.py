"""A card session: connect, detect the card, talk to it.

:meth:`CardSession.connect` powers the card, classifies its ATR, SELECTs the
social security application (SSSE) by DF name and reads EF05; the
specification version (tag 03: "1.00" / "2.00" / "3.00") decides the
generation and the card profile (``card_model/data/profiles``).  Anything
else is refused with :class:`~apdu.errors.WrongCardType` (-1): a PSAM, a
card whose SELECT answers other than 9000 / 6283, an EF05 that cannot be
read or decoded, an unknown version.

The session carries what the flows share: the key source (cryptograms for
this card through :meth:`CardSession.keys`), the journal hook, the trust
anchors for card certificates and the terminal / device numbers of the
national strings.  Flows run inside :meth:`transaction` (exclusive access
to the card).  A card pulled out surfaces as
:class:`~apdu.errors.CardRemovedError` from the transport; the journal scope
of a write turns it into :class:`~terminal.errors.TornOperation`.

With a :class:`~terminal.presentation.PresentationGate` (``gate=``) every
``connect()`` consults the card status registry
(:attr:`CardSession.presentation`) and enforces its decision on the card, and
every flow is admitted by :meth:`CardSession.admit` (refused card, registry
unreachable, agent rule); see :mod:`terminal.presentation`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from apdu.command import CommandApdu
from apdu.elements import CardIdentification, decode_file
from apdu.errors import (
    CardError,
    CardRemovedError,
    CardResetError,
    KeySourceError,
    NoCardError,
    ProtocolError,
    RecordNotFound,
    SscardError,
    WrongCardType,
)
from apdu.protocol import ApduProtocol
from apdu.response import ResponseApdu
from apdu.sm import iv_from_challenge, wrap_command
from apdu.status import Context
from apdu.tlv import parse_records
from apdu.trace import Tracer
from apdu.transport import Transport
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.profile import Profile, load_profile
from sm_crypto.x509 import Sm2Certificate
from terminal._data import load_data
from terminal.journal_hook import JournalHook, NullJournal
from terminal.keysource.base import CardKeys, KeySource
from terminal.link import GuardedTransport
from terminal.readers import ReaderInfo, classify, historical_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from terminal.journal_hook import DetailValue
    from terminal.presentation import Presentation, PresentationGate

__all__ = ["CardInfo", "CardSession", "Interface", "generation_for_version"]

Interface = Literal["contact", "contactless"]

SW_OK = 0x9000
RECORD_ALL = 0x05
RECORD_ONE = 0x04
LE_ALL = 256
SM_CHALLENGE = 4


@cache
def _cards() -> dict[str, Any]:
    return load_data("cards")


def generation_for_version(spec_version: str) -> tuple[int, str] | None:
    """``(generation, profile name)`` of an EF05 specification version, or None."""
    row = _cards()["spec_version"].get(spec_version)
    if row is None:
        return None
    return int(row["generation"]), str(row["profile"])


def get_data_tag(name: str) -> int:
    return int(_cards()["get_data"][name])


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What detection established about the card in the reader."""

    reader: str
    atr: bytes
    interface: Interface
    generation: int
    spec_version: str
    profile_name: str
    card_id: CardIdentification
    card_type: str
    init_org: bytes
    issue_date: _dt.date
    expiry_date: _dt.date
    card_number: str
    application_blocked: bool = False
    ef05: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    ef05_raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def historical_bytes(self) -> bytes:
        return historical_bytes(self.atr)

    @property
    def card_id_hex(self) -> str:
        return self.card_id.hex()

    @property
    def factor(self) -> bytes:
        """The key diversification factor (issuer serial)."""
        return self.card_id.diversification_factor


class CardSession:
    """One card in one reader; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        key_source: KeySource | None = None,
        journal: JournalHook | None = None,
        tracer: Tracer | None = None,
        trust_anchors: Sequence[Sm2Certificate] = (),
        terminal_number: str | None = None,
        device_number: str = "",
        gate: PresentationGate | None = None,
    ) -> None:
        self.transport = transport
        self.protocol = ApduProtocol(GuardedTransport(transport), tracer)
        self.key_source = key_source
        self.journal: JournalHook = journal if journal is not None else NullJournal()
        self.trust_anchors: tuple[Sm2Certificate, ...] = tuple(trust_anchors)
        self._terminal_number = terminal_number
        self.device_number = device_number
        self._info: CardInfo | None = None
        self._profile: Profile | None = None
        self.gate = gate
        self.presentation: Presentation | None = None
        self._gate_bypass = False

    @classmethod
    def open(cls, reader: str | ReaderInfo, **options: Any) -> CardSession:
        """Connect to the card in PC/SC reader ``reader`` (full name) and detect it.

        When detection fails (a foreign card, a PSAM, a card pulled meanwhile)
        the card is released before the error is raised: no PC/SC handle is
        left behind to keep the reader "in use" for the process's lifetime."""
        from apdu.pcsc import PcscTransport

        name = reader.name if isinstance(reader, ReaderInfo) else reader
        session = cls(PcscTransport(name, dispose="reset_if_changed"), **options)
        try:
            session.connect()
        except BaseException:
            with suppress(SscardError):
                session.close()
            raise
        return session

    def __repr__(self) -> str:
        if self._info is None:
            return f"CardSession({self.transport.reader!r}, not connected)"
        return f"CardSession({self.transport.reader!r}, gen{self._info.generation}, {self._info.interface})"

    # -- connection -------------------------------------------------------------------

    def connect(self) -> CardInfo:
        """Power the card and detect it (raises WrongCardType for a non-SSC card)."""
        if not self.transport.connected:
            self.transport.connect()
        try:
            try:
                with self.transport.transaction():
                    info = self._detect()
            except CardResetError:
                # Another application reset the card between our connect and
                # detection: nothing of this session was on the card yet.
                info = self._after_reset(expected=None)
        except SscardError:
            self._info = None
            raise
        self._info = info
        self._profile = load_profile(info.profile_name)
        self.presentation = None
        if self.gate is not None:
            self.presentation = self.gate.present(self)
        return self._info

    def close(self) -> None:
        """Release the card.  The PC/SC transport resets it unless the session only
        read (``reset_if_changed``): no verified PIN or authentication survives."""
        self._info = None
        self.transport.disconnect()

    def __enter__(self) -> CardSession:
        if self._info is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _detect(self) -> CardInfo:
        reader = self.transport.reader
        atr = self.transport.atr
        kind, _ = classify(reader, atr)
        if kind == "psam":
            raise WrongCardType(f"{reader}: the card is a PSAM, not a social security card")
        interface: Interface = "contactless" if kind == "contactless" else "contact"
        select = self.select_application(check=False)
        accepted = {int(sw, 16) for sw in _cards()["ssse"]["select_ok"]}
        if select.sw not in accepted:
            raise WrongCardType(
                f"{reader}: no social security application on the card (SELECT answered {select.sw:04X})",
                sw=select.sw,
            )
        sfi = int(_cards()["ef05"]["sfi"])
        try:
            raw = self.send(self._read_all(sfi)).data
            ef05 = decode_file("EF05", raw)
        except (CardError, ProtocolError) as exc:
            raise WrongCardType(
                f"{reader}: card identification (EF05) unreadable: {exc.error_id}", sw=exc.sw
            ) from exc
        version = ef05.get("spec_version")
        found = generation_for_version(version) if isinstance(version, str) else None
        if found is None:
            raise WrongCardType(f"{reader}: unknown specification version in EF05")
        missing = {"card_id", "card_type", "init_org", "issue_date", "expiry_date", "card_number"} - set(ef05)
        if missing:
            raise WrongCardType(f"{reader}: EF05 lacks {', '.join(sorted(missing))}")
        generation, profile_name = found
        return CardInfo(
            reader=reader,
            atr=atr,
            interface=interface,
            generation=generation,
            spec_version=str(version),
            profile_name=profile_name,
            card_id=ef05["card_id"],
            card_type=ef05["card_type"],
            init_org=ef05["init_org"],
            issue_date=ef05["issue_date"],
            expiry_date=ef05["expiry_date"],
            card_number=ef05["card_number"],
            application_blocked=select.sw == 0x6283,
            ef05=ef05,
            ef05_raw=raw,
        )

    # -- what the flows use -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._info is not None and self.transport.connected

    @property
    def info(self) -> CardInfo:
        if self._info is None:
            raise NoCardError(f"{self.transport.reader}: no card session (connect first)")
        return self._info

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            raise NoCardError(f"{self.transport.reader}: no card session (connect first)")
        return self._profile

    @property
    def generation(self) -> int:
        return self.info.generation

    @property
    def algorithm(self) -> Algorithm:
        return self.profile.algorithm

    @property
    def card_id(self) -> str:
        """The card identification code, 32 upper-case hex digits."""
        return self.info.card_id_hex

    @property
    def terminal_number(self) -> str:
        if self._terminal_number is not None:
            return self._terminal_number
        return self.key_source.terminal_number if self.key_source is not None else ""

    def admit(self, operation: str, details: Mapping[str, DetailValue] | None = None) -> None:
        """Raise if the gate refuses the flow ``operation`` on this card
        (called by every flow right after its journal ``begin``)."""
        if self.gate is not None and not self._gate_bypass:
            self.gate.admit(self.presentation, operation, details)

    @contextmanager
    def gate_bypass(self) -> Iterator[None]:
        """Flows run inside are not admitted by the gate (the gate's own block / unblock)."""
        previous, self._gate_bypass = self._gate_bypass, True
        try:
            yield
        finally:
            self._gate_bypass = previous

    def keys(self, key_source: KeySource | None = None) -> CardKeys:
        """The key source (``key_source`` or the session's) bound to this card."""
        source = key_source if key_source is not None else self.key_source
        if source is None:
            raise KeySourceError(
                "no key source (PSAM, security module or key file) is configured", kind="no_psam"
            )
        return CardKeys(source, self.algorithm, self.info.factor)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Exclusive access to the card for a flow.

        When another application reset the card since the last flow
        (``CardResetError`` at the start), the session reconnects, detects the
        card again (its security state is gone anyway) and goes on if it is
        the same card; another card is :class:`CardRemovedError`."""
        with ExitStack() as stack:
            try:
                stack.enter_context(self.transport.transaction())
            except CardResetError:
                self._after_reset(expected=self._info)
                stack.enter_context(self.transport.transaction())
            yield

    def _after_reset(self, expected: CardInfo | None) -> CardInfo:
        """Reconnect after a reset and detect the card; ``expected``: the card
        the session had, to refuse another one."""
        self.transport.reconnect(reset=False)
        with self.transport.transaction():
            info = self._detect()
        if expected is not None and info.card_id != expected.card_id:
            self._info = None
            raise CardRemovedError(f"{self.transport.reader}: another card is in the reader")
        self._info = info
        return info

    def send(
        self,
        cmd: CommandApdu,
        *,
        context: Context | None = None,
        check: bool = True,
        accept: Collection[int] = (),
    ) -> ResponseApdu:
        return self.protocol.send(cmd, context=context, check=check, accept=accept)

    def select_application(self, *, check: bool = True) -> ResponseApdu:
        """SELECT the SSSE by DF name (6283, temporarily blocked, is accepted)."""
        df_name = bytes.fromhex(_cards()["ssse"]["df_name"])
        return self.send(
            CommandApdu(0x00, 0xA4, 0x04, 0x00, df_name, le=LE_ALL), check=check, accept={0x6283}
        )

    @staticmethod
    def _read_all(sfi: int) -> CommandApdu:
        return CommandApdu(0x00, 0xB2, 0x01, (sfi << 3) | RECORD_ALL, le=LE_ALL)

    def read_all_raw(self, sfi: int) -> bytes:
        """READ RECORD "all" of record file ``sfi``: the concatenated
        ``tag | len | value`` records (``b""`` when it holds none)."""
        try:
            return self.send(self._read_all(sfi)).data
        except RecordNotFound:
            return b""

    def read_records(self, sfi: int) -> list[tuple[int, bytes]]:
        """Every record of record file ``sfi`` (``[]`` when it holds none)."""
        return parse_records(self.read_all_raw(sfi))

    def read_record(self, sfi: int, tag: int) -> bytes | None:
        """Value of record ``tag`` of file ``sfi``; None when absent (6A83)."""
        try:
            raw = self.send(CommandApdu(0x00, 0xB2, tag, (sfi << 3) | RECORD_ONE, le=LE_ALL)).data
        except RecordNotFound:
            return None
        records = parse_records(raw)
        if len(records) != 1 or records[0][0] != tag:
            raise ProtocolError(f"READ RECORD {tag:02X}: the card answered another record")
        return records[0][1]

    def read_binary_file(self, fid: int, length: int) -> bytes:
        """SELECT the EF ``fid`` and read ``length`` bytes from offset 0 (fewer at its end)."""
        self.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        out = bytearray()
        while len(out) < length:
            position = len(out)
            chunk = min(LE_ALL, length - position)
            cmd = CommandApdu(0x00, 0xB0, position >> 8, position & 0xFF, le=chunk)
            response = self.send(cmd, accept={0x6282})
            out += response.data
            if response.sw == 0x6282 or not response.data:
                break
        return bytes(out)

    def get_data(self, tag: int) -> bytes:
        """GET DATA ``80 CA DF tag``."""
        return self.send(CommandApdu(0x80, 0xCA, 0xDF, tag, le=LE_ALL)).data

    def life_cycle(self) -> LifeCycle:
        raw = self.get_data(get_data_tag("life_cycle"))
        if len(raw) != 1:
            raise ProtocolError("GET DATA DF01: one byte expected")
        try:
            return LifeCycle(raw[0])
        except ValueError:
            raise ProtocolError("GET DATA DF01: unknown life-cycle state") from None

    def get_challenge(self, length: int) -> bytes:
        response = self.send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=length))
        if len(response.data) != length:
            raise ProtocolError(f"GET CHALLENGE: {len(response.data)} bytes answered, {length} asked")
        return response.data

    def key_kid(self, role: KeyRole) -> int:
        spec = self.profile.key_for_role(role)
        if spec is None:
            raise KeySourceError(f"the {self.profile.name} profile has no {role.value} key", kind="key_level")
        return spec.kid

    def external_authenticate(self, role: KeyRole, key_source: KeySource | None = None) -> None:
        """GET CHALLENGE 8 + EXTERNAL AUTHENTICATE with ``role``'s card key."""
        keys = self.keys(key_source)
        kid = self.key_kid(role)
        with self.transaction():
            challenge = self.get_challenge(8)
            cryptogram = keys.external_auth(role, challenge)
            self.send(CommandApdu(0x00, 0x82, 0x00, kid, cryptogram), context="key")

    def prepare_secure(
        self, cmd: CommandApdu, role: KeyRole, key_source: KeySource | None = None
    ) -> CommandApdu:
        """GET CHALLENGE 4 and ``cmd`` wrapped with the MAC of ``role`` (send it next:
        the challenge is consumed by the next command)."""
        keys = self.keys(key_source)
        challenge = self.get_challenge(SM_CHALLENGE)
        iv = iv_from_challenge(challenge, self.algorithm.block_size)
        return wrap_command(cmd, iv, keys.mac_provider(role))
