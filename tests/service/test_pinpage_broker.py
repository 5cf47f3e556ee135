"""The hand-over between a waiting card operation and the PIN page
(terminal/service/pinpage.py), without a browser or a card."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from apdu.errors import PinEntryError
from terminal.service.errors import NotFound
from terminal.service.events import EventHub
from terminal.service.pinpage import PinKind, PinPageBroker, split_pins, steps_of

WAIT = 5.0
READER = "Virtual PCD G 00 00"


@pytest.fixture
def broker() -> PinPageBroker:
    return PinPageBroker(EventHub())


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def pending_id(broker: PinPageBroker) -> str:
    """The id of the request the page would show (waits for it to be registered)."""
    deadline = time.monotonic() + WAIT
    while not broker.pending():
        assert time.monotonic() < deadline, "no request became pending"
        time.sleep(0.005)
    (entry,) = broker.pending()
    return str(entry["id"])


def ask(
    broker: PinPageBroker, pool: ThreadPoolExecutor, kind: PinKind, timeout: float = WAIT
) -> Future[list[bytearray]]:
    """A card operation waiting for the PIN page, in a worker thread."""
    return pool.submit(broker.request, kind, reader=READER, operation=f"pin.{kind}", timeout=timeout)


def test_pinpage_split_pins_wipes_the_body() -> None:
    body = bytearray(b"211008\r\n468024\n468024\n")
    old, new, again = split_pins(body, 3)
    assert (old, new, again) == (bytearray(b"211008"), bytearray(b"468024"), bytearray(b"468024"))
    assert body == bytearray(len(body))
    short = bytearray(b"211008")
    with pytest.raises(PinEntryError) as caught:
        split_pins(short, 3)
    assert caught.value.national_code == -33
    assert short == bytearray(len(short))


def test_pinpage_steps_come_from_the_data_file() -> None:
    assert steps_of("verify") == ("pin",)
    assert steps_of("change") == ("old", "new", "again")


def test_pinpage_verify_hands_the_pin_over(broker: PinPageBroker, pool: ThreadPoolExecutor) -> None:
    answer = ask(broker, pool, "verify")
    entry_id = pending_id(broker)
    (shown,) = broker.pending()
    assert set(shown) == {"id", "kind", "reader", "steps", "expires_in"}
    assert shown["steps"] == ["pin"]
    body = bytearray(b"211008")
    broker.submit(entry_id, body)
    assert answer.result(WAIT) == [bytearray(b"211008")]
    assert body == bytearray(6)
    assert broker.pending() == []
    with pytest.raises(NotFound):
        broker.submit(entry_id, bytearray(b"211008"))


def test_pinpage_change_checks_the_repetition(broker: PinPageBroker, pool: ThreadPoolExecutor) -> None:
    answer = ask(broker, pool, "change")
    entry_id = pending_id(broker)
    with pytest.raises(PinEntryError) as caught:
        broker.submit(entry_id, bytearray(b"211008\n468024\n468025"))
    assert caught.value.national_code == -34
    assert broker.reader_of(entry_id) == READER
    broker.submit(entry_id, bytearray(b"211008\n468024\n468024"))
    assert answer.result(WAIT) == [bytearray(b"211008"), bytearray(b"468024")]


def test_pinpage_cancel_and_timeout(broker: PinPageBroker, pool: ThreadPoolExecutor) -> None:
    answer = ask(broker, pool, "verify")
    broker.cancel(pending_id(broker))
    with pytest.raises(PinEntryError) as cancelled:
        answer.result(WAIT)
    assert cancelled.value.national_code == -31

    started = threading.Event()

    def short_wait() -> list[bytearray]:
        started.set()
        return broker.request("verify", reader="r", operation="pin.verify", timeout=0.05)

    late = pool.submit(short_wait)
    started.wait(WAIT)
    with pytest.raises(PinEntryError) as timed_out:
        late.result(WAIT)
    assert timed_out.value.national_code == -32
    with pytest.raises(NotFound):
        broker.cancel("no-such-entry")
