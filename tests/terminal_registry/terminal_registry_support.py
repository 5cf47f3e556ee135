"""Helpers of the terminal-registry tests: vpcd slots, the demo card, a
registry with the demo holder, and a TCP link to PostgreSQL that can be cut.

Slots (tests/conftest.py, part of the terminal range): 6 the card, 7 the PSAM.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from card_model.demo import demo_ca, demo_card_image, demo_holder
from card_model.lifecycle import LifeCycle
from card_model.values import CardIdCode
from emulator.card_os import CardOS
from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card
from emulator.vpcd import CardWrapper, Tear, VirtualCard
from terminal.journal_hook import RegistryJournal
from terminal.keysource import PsamKeySource
from terminal.presentation import PresentationGate
from terminal.registry import Actor, AgentInfo, Journal, Registry
from terminal.session import CardSession

CARD_SLOT = 6
PSAM_SLOT = 7
INITIAL_PIN = "211008"  # last six characters of the demo holder's SSN
DEMO_SSN = "110102197305211008"
CLERK = Actor(operator="op-007", terminal="BJ-T-0007")
AGENT = Actor(
    operator="op-007",
    terminal="BJ-T-0007",
    agent=AgentInfo(name="李四", id_number="11010119800101002X", authorisation="WT-2025-0042"),
)
OTHER_TERMINAL = Actor(operator="op-900", terminal="BJ-BANK-0900")


def demo_card_id() -> str:
    """The identification code of the demo generation-3 card."""
    _, card = demo_holder("gen3")
    return CardIdCode(card.region_code, card.serial).hex()


def new_card_id(serial: int) -> str:
    return f"110102D156000005{serial:016X}"


def gen3_card(life_cycle: LifeCycle | None = LifeCycle.ACTIVE) -> CardOS:
    return CardOS(demo_card_image(3, life_cycle=life_cycle))


def register_demo(registry: Registry, *, status: str = "active") -> str:
    """The demo holder and its generation-3 card in the registry."""
    registry.register_holder(DEMO_SSN, "张三", gender="1", birth_date="1973-05-21")
    card_id = demo_card_id()
    registry.register_card(card_id, "X00000019", DEMO_SSN, 3, "BOB", "2025-03-01", "2035-02-28", status)
    return card_id


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2025, 6, 1, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now = self.now + timedelta(**kwargs)


class TearingCard(CardWrapper):
    """Executes the next command with INS ``ins`` and is pulled out before answering."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.ins: int | None = None

    def arm(self, ins: int) -> None:
        self.ins = ins

    def process(self, apdu: bytes) -> bytes:
        if self.ins is not None and len(apdu) > 1 and apdu[1] == self.ins:
            self.ins = None
            self.card.process(apdu)
            raise Tear()
        return self.card.process(apdu)


def operations(journal: Journal, card_id: str) -> list[tuple[str, str | None, int | None]]:
    """(operation, result, national code) of the card's journal entries, oldest first."""
    return [(e.operation, e.result, e.national_code) for e in journal.query(card_id=card_id)]


class CuttableLink:
    """A TCP forwarder 127.0.0.1:<port> -> PostgreSQL that can be cut and restored,
    standing for the network between a terminal and the fleet's registry."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5.0)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


@dataclass
class Terminal:
    """A registry, its journal and a factory of sessions on the card in slot 6."""

    registry: Registry
    journal: Journal
    clock: FakeClock
    reader: str
    psam: PsamKeySource
    opened: list[CardSession]

    def gate(self, actor: Actor = CLERK) -> PresentationGate:
        return PresentationGate(self.registry, actor=actor)

    def session(
        self,
        *,
        gate: PresentationGate | None = None,
        actor: Actor = CLERK,
        journal: Journal | None = None,
        key_source: PsamKeySource | str | None = "psam",
    ) -> CardSession:
        """A session on the card through a presentation gate (by default one on
        this registry for ``actor``), journaling into ``journal`` (default: the
        registry's)."""
        chosen_gate = gate if gate is not None else self.gate(actor)
        hook = chosen_gate.journal_hook(journal if journal is not None else self.journal)
        session = CardSession.open(
            self.reader,
            key_source=self.psam if key_source == "psam" else key_source,  # type: ignore[arg-type]
            journal=hook,
            gate=chosen_gate,
            trust_anchors=[demo_ca().certificate],
        )
        self.opened.append(session)
        return session

    def plain(self) -> CardSession:
        """A session without any registry (what a stand-alone terminal sees)."""
        session = CardSession.open(
            self.reader,
            key_source=self.psam,
            journal=RegistryJournal(self.journal, terminal="BJ-T-PLAIN", operator="op-plain"),
            trust_anchors=[demo_ca().certificate],
        )
        self.opened.append(session)
        return session
