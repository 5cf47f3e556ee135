"""The pieces of the infrastructure-fault fixes in process, without PC/SC:
the service's bounded wait for a card (terminal/service/deadline.py) and its
journal through a registry outage (terminal/service/journal_outage.py); and
from the soak's memory study (docs/reliability.md "Soak"), the PIN rate
limiter's table of cards staying bounded (terminal/service/ratelimit.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import pytest

from apdu.errors import CardMuteError, CardRemovedError, NoCardError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_card_image
from emulator.card_os import CardOS
from terminal.journal_hook import DetailValue
from terminal.registry.errors import RegistryStorageError, RegistryUnavailable
from terminal.service.deadline import DeadlineTransport, MuteReaders
from terminal.service.errors import PinRateLimited
from terminal.service.journal_outage import OutageTolerantJournal
from terminal.service.ratelimit import PinRateLimiter

CHALLENGE = bytes.fromhex("0084000004")  # GET CHALLENGE: 4 bytes and 9000


class SilentCard:
    """A demo card that stops answering (until released) at the armed command."""

    def __init__(self) -> None:
        self.card = CardOS(demo_card_image(3))
        self.armed = False
        self.silent = threading.Event()
        self.release = threading.Event()

    def atr(self) -> bytes:
        return self.card.atr()

    def process(self, apdu: bytes) -> bytes:
        if self.armed:
            self.armed = False
            self.silent.set()
            self.release.wait(30.0)
        return self.card.process(apdu)


def _wait(predicate: Callable[[], bool], what: str) -> None:
    done = threading.Event()
    for _ in range(500):
        if predicate():
            done.set()
            break
        done.wait(0.01)
    assert done.is_set(), what


def test_a_silent_card_is_card_mute_and_its_reader_recovers() -> None:
    card = SilentCard()
    mute = MuteReaders()
    inner = InProcessTransport(card, reader="R1")
    transport = DeadlineTransport(inner, 0.2, mute)
    transport.connect()
    with transport.transaction():
        assert transport.transmit(CHALLENGE)[-2:] == b"\x90\x00"
    card.armed = True
    with pytest.raises(CardMuteError) as caught, transport.transaction():
        transport.transmit(CHALLENGE)
    assert caught.value.national_code == -4 and "within 0.2 s" in str(caught.value)
    assert card.silent.is_set() and "R1" in mute and not transport.connected
    with pytest.raises(CardMuteError):
        mute.check("R1")  # a new session on that reader fails at once
    with pytest.raises(CardMuteError):
        transport.transmit(CHALLENGE)  # the abandoned session too
    card.release.set()
    _wait(lambda: "R1" not in mute, "the abandoned session to end")
    assert not inner.connected  # disconnected by the worker, after the late answer
    mute.check("R1")


def test_no_worker_thread_outlives_a_failed_connect() -> None:
    before = threading.active_count()
    mute = MuteReaders()
    for _ in range(20):
        transport = DeadlineTransport(InProcessTransport(None, reader="empty"), 1.0, mute)
        with pytest.raises(NoCardError):
            transport.connect()
    _wait(lambda: threading.active_count() <= before, "the workers to stop")


def test_a_card_lost_inside_a_transaction_ends_it_in_the_same_thread() -> None:
    """The transaction's lock belongs to the worker that began it: ending it
    after the card was lost must not run in another thread."""
    card = CardOS(demo_card_image(3))
    inner = InProcessTransport(card, reader="R2")
    transport = DeadlineTransport(inner, 1.0, MuteReaders())
    transport.connect()
    with pytest.raises(CardRemovedError), transport.transaction():
        inner.remove()
        transport.transmit(CHALLENGE)
    inner.insert(card)
    transport.disconnect()
    transport.connect()
    with transport.transaction():
        assert transport.transmit(CHALLENGE)[-2:] == b"\x90\x00"
    transport.disconnect()


class _LoggingCard:
    """The demo card, logging the Le of each GET CHALLENGE it answers."""

    def __init__(self) -> None:
        self.card = CardOS(demo_card_image(3))
        self.log: list[int] = []
        self._pause = threading.Event()

    def atr(self) -> bytes:
        return self.card.atr()

    def process(self, apdu: bytes) -> bytes:
        self.log.append(apdu[-1])
        self._pause.wait(0.001)  # give the other caller a chance to cut in
        return self.card.process(apdu)


def test_a_shared_transport_keeps_each_transaction_whole() -> None:
    """A PSAM's transport is shared by the sessions of several readers: one
    caller's transaction (INIT FOR DESCRYPT + CIPHER, or a purse's steps) must
    never have another caller's command in the middle, although every call
    runs in the one worker thread."""
    card = _LoggingCard()
    transport = DeadlineTransport(InProcessTransport(card, reader="PSAM"), 5.0, MuteReaders())
    transport.connect()
    rounds, length = 20, 4
    start = threading.Barrier(2)

    def caller(le: int) -> None:
        start.wait()
        for _ in range(rounds):
            with transport.transaction():
                for _ in range(length):
                    assert transport.transmit(bytes((0x00, 0x84, 0x00, 0x00, le)))[-2:] == b"\x90\x00"

    threads = [threading.Thread(target=caller, args=(le,)) for le in (4, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    transport.disconnect()
    assert len(card.log) == 2 * rounds * length
    runs = [card.log[i : i + length] for i in range(0, len(card.log), length)]
    assert all(len(set(run)) == 1 for run in runs), card.log


class _DownJournal:
    """The registry journal of an unreachable database."""

    def begin(self, operation: str, *, card_id: str | None, details: Mapping[str, DetailValue]) -> int:
        raise RegistryStorageError("connection refused", detail_zh="连接被拒绝")

    def complete(self, entry_id: int | None, **kwargs: object) -> None:
        raise RegistryStorageError("connection refused", detail_zh="连接被拒绝")

    def mark_torn(self, entry_id: int | None, note: str) -> None:
        raise RegistryStorageError("connection refused", detail_zh="连接被拒绝")


def test_the_journal_through_a_registry_outage() -> None:
    journal = OutageTolerantJournal(_DownJournal())  # type: ignore[arg-type]
    assert journal.begin("card.read_basic", card_id=None, details={}) is None
    assert journal.begin("card.block", card_id=None, details={"mode": "temporary"}) is None
    with pytest.raises(RegistryUnavailable) as refused:
        journal.begin("card.write", card_id=None, details={})
    error = refused.value
    assert error.national_code == -1166 and error.error_id == "registry_unavailable"
    assert error.message_zh == "卡状态登记库暂时无法访问，不能办理写入卡片数据，请稍后重试"
    assert "connection refused" not in str(error)
    journal.complete(7, result="ok")  # the entry stays open for the next session to settle
    journal.mark_torn(7, "card removed")


class StepClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_pin_rate_limiter_forgets_cards_idle_for_a_window() -> None:
    # A counter sees thousands of cards; each PIN attempt put its card in the
    # limiter's table, which nothing pruned.
    clock = StepClock()
    limiter = PinRateLimiter(attempts=5, window=60.0, failure_delay=1.0, clock=clock)
    for number in range(2000):
        limiter.check(f"card-{number:05d}")
        if number % 7 == 0:
            limiter.failed(f"card-{number:05d}")
        clock.now += 0.1  # 200 s in all: more than three windows
    assert limiter.tracked <= 2 * 600 + 1
    clock.now += 61.0
    limiter.check("the next card")
    assert limiter.tracked == 1
    # a card with attempts in the window keeps them through the pruning
    clock.now += 30.0
    for _ in range(5):
        limiter.check("busy card")
    clock.now += 31.0
    limiter.check("one more")
    assert limiter.tracked == 2
    with pytest.raises(PinRateLimited):
        limiter.check("busy card")
