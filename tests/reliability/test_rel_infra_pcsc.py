"""Infrastructure faults under the local service (issue 11): pcscd killed and
restarted while the service idles and in the middle of flows, a reader that
disappears, a card host that vanishes mid-flow, a mute card and a mute PSAM.

The service runs as its own process (``python -m terminal.service``) on a
private pcscd (rel_pcscd: vpcd slots 48-53, never the shared daemon), with
the demo PSAM as key source in slot 49 and cards in slots 48, 50 and 52.
Every answer checked here is a documented error body with its national
code, never a 500, and the service process survives every fault.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from rel_rig import ANSWER_LIMIT, EF07_PHONE, Rig, Wrapper, assert_refused
from rel_service import national_call

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.vpcd import Tear

# What a flow may answer when pcscd dies under it (-11 PC/SC gone or RPC broken,
# -2 the card connection lost, -12 the reader gone with the daemon).
PCSC_LOST = {"pcsc_unavailable", "transport_error", "card_removed", "card_removed_torn", "reader_not_found"}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    made = Rig(tmp_path_factory.mktemp("infra"))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def card(rig: Rig) -> Iterator[tuple[int, Wrapper]]:
    """An active generation-3 card (wrapped, to misbehave on demand) in slot 48."""
    wrapper = Wrapper(CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE)))
    rig.put(48, wrapper)
    rig.wait_card(48)
    try:
        yield 48, wrapper
    finally:
        wrapper.hook = None
        rig.pull(48)
        if rig.pcscd.running:
            rig.wait_card(48, present=False)


def test_pcscd_killed_while_the_service_idles(rig: Rig, card: tuple[int, Wrapper]) -> None:
    slot, _ = card
    assert rig.call("/card/basic", slot)[0] == 200
    rig.pcscd.kill()
    down = rig.events.next(lambda e: e["event"] == "pcsc_unavailable")
    assert down["message"] == "智能卡服务（PC/SC）不可用，正在等待服务恢复"
    health = rig.service.get("/health").json()
    assert health["status"] == "degraded"
    assert health["pcscd"] == {"reachable": False, "error": "pcsc_unavailable"}
    status, body = rig.call("/card/basic", slot)
    assert_refused(status, body, {"pcsc_unavailable"})
    assert (status, body["national_code"]) == (503, "-11")
    with rig.service.national_ws() as ws:
        answer = national_call(ws, "iReadCardBas", iType=3)
    assert answer["success"] == -11 and answer["message"]
    assert rig.service.alive

    rig.pcscd.start()
    rig.events.next(lambda e: e["event"] == "pcsc_available")
    rig.reinsert_all()
    inserted = rig.events.next(lambda e: e["event"] == "card_inserted" and e["reader"] == rig.reader(slot))
    assert inserted["card_kind"] == "social_security"  # events resume
    assert rig.call("/card/basic", slot)[0] == 200
    assert rig.call("/card/authenticate", slot)[1]["genuine"] is True  # the PSAM was re-opened
    with rig.service.national_ws() as ws:
        assert national_call(ws, "iReadCardBas", iType=3)["success"] == 0
    assert rig.service.get("/health").json()["status"] == "ok"


def _kill_at(rig: Rig, wrapper: Wrapper, ins: int, *, execute: bool) -> threading.Event:
    """On the next command with INS ``ins``: pcscd is killed (SIGKILL) while the
    card holds the command, which is executed first when ``execute``."""
    fired = threading.Event()

    def hook(apdu: bytes) -> bytes | None:
        if len(apdu) < 2 or apdu[1] != ins or fired.is_set():
            return None
        fired.set()
        if execute:
            wrapper.card.process(apdu)
        rig.pcscd.kill()
        raise Tear()

    wrapper.hook = hook
    return fired


@pytest.mark.parametrize("execute", [False, True], ids=["before", "after"])
def test_pcscd_killed_during_a_write(rig: Rig, card: tuple[int, Wrapper], execute: bool) -> None:
    """pcscd dies while the card holds UPDATE RECORD: a clean transport error;
    after the restart the record holds the old or the new value, never a mix,
    and the next write goes through."""
    slot, wrapper = card
    before = rig.call("/card/read", slot, address=EF07_PHONE)[1]["records"][0]["value"]
    fired = _kill_at(rig, wrapper, 0xDC, execute=execute)
    status, body = rig.call("/card/write", slot, address=EF07_PHONE, data=["13912345678"])
    assert fired.is_set()
    assert_refused(status, body, PCSC_LOST)
    wrapper.hook = None
    rig.recover()
    after = rig.call("/card/read", slot, address=EF07_PHONE)[1]["records"][0]["value"]
    assert after == ("13912345678" if execute else before)
    assert rig.call("/card/write", slot, address=EF07_PHONE, data=["13900000009"])[0] == 200
    assert rig.call("/card/read", slot, address=EF07_PHONE)[1]["records"][0]["value"] == "13900000009"


def test_pcscd_killed_during_pin_verify_and_authentication(rig: Rig, card: tuple[int, Wrapper]) -> None:
    slot, wrapper = card
    tries = wrapper.card.image.pin.tries_left  # type: ignore[attr-defined]
    _kill_at(rig, wrapper, 0x20, execute=False)
    status, body = rig.call("/pin/verify", slot, pin="211008")
    assert_refused(status, body, PCSC_LOST)
    rig.recover()
    assert wrapper.card.image.pin.tries_left == tries  # type: ignore[attr-defined]
    _kill_at(rig, wrapper, 0x88, execute=True)
    status, body = rig.call("/card/authenticate", slot)
    assert_refused(status, body, PCSC_LOST)
    rig.recover()
    assert rig.call("/pin/verify", slot, pin="211008")[1]["ok"] is True
    assert rig.call("/card/authenticate", slot)[1]["genuine"] is True
    assert rig.service.alive


def test_a_reader_disappears_and_comes_back(rig: Rig, card: tuple[int, Wrapper]) -> None:
    """pcscd restarted without the third vpcd driver: its two readers vanish
    (reader_detached), a request for one is reader_not_found (-12), the
    others work; with the driver back, the readers return (reader_attached)."""
    slot, _ = card
    gone = rig.reader(52)
    rig.put(52, CardOS(demo_card_image(2)))
    rig.wait_card(52)
    full = rig.pcscd.entries
    rig.pcscd.stop()
    rig.pcscd.entries = full[:2]
    rig.pcscd.start()
    rig.links.pop(52).remove()
    rig.reinsert_all()
    detached = rig.events.next(lambda e: e["event"] == "reader_detached" and e["reader"] == gone)
    assert detached["message"] == "读卡器已断开"
    assert not rig.service.reader_listed(gone)
    answer = rig.service.post("/card/basic", {"reader": gone})
    status, body = answer.status_code, answer.json()
    assert_refused(status, body, {"reader_not_found"})
    assert (status, body["national_code"]) == (404, "-12")
    assert rig.call("/card/basic", slot)[0] == 200

    rig.pcscd.stop()
    rig.pcscd.entries = full
    rig.pcscd.start()
    rig.reinsert_all()
    rig.events.next(lambda e: e["event"] == "reader_attached" and e["reader"] == gone)
    rig.put(52, CardOS(demo_card_image(2)))
    rig.wait_card(52)
    assert rig.call("/card/basic", 52)[1]["generation"] == 2
    rig.pull(52)


def test_a_card_host_vanishing_mid_flow(rig: Rig, card: tuple[int, Wrapper]) -> None:
    """The vpcd connection of a card drops in the middle of a multi-command flow
    (the emulator process died): card_removed (-2), the event, and the slot
    works again with the next card."""
    slot, wrapper = card

    def hook(apdu: bytes) -> bytes | None:
        if len(apdu) > 1 and apdu[1] == 0x88:
            raise Tear()
        return None

    wrapper.hook = hook
    status, body = rig.call("/card/authenticate", slot)
    assert_refused(status, body, {"card_removed", "no_card"})
    assert body["national_code"] == "-2"
    rig.events.next(lambda e: e["event"] == "card_removed" and e["reader"] == rig.reader(slot))
    wrapper.hook = None
    rig.links[slot].insert()
    rig.wait_card(slot)
    assert rig.call("/card/authenticate", slot)[1]["genuine"] is True


def test_a_mute_card_gets_a_bounded_clean_error(rig: Rig, card: tuple[int, Wrapper]) -> None:
    """A card that stops answering: the request ends with card_mute (-4) after
    the configured limit instead of hanging, later requests for that reader
    fail at once with the same code while it stays silent, other cards and the
    national interface keep working, and the reader recovers when the card
    answers again."""
    slot, wrapper = card
    other = CardOS(demo_card_image(2))
    rig.put(50, other)
    rig.wait_card(50)
    silent, release = threading.Event(), threading.Event()

    def hook(apdu: bytes) -> bytes | None:
        if len(apdu) > 1 and apdu[1] == 0xB2 and not silent.is_set():
            silent.set()
            release.wait(60.0)
        return None

    wrapper.hook = hook
    try:
        status, body = rig.call("/card/basic", slot)
        assert silent.is_set()
        assert_refused(status, body, {"card_mute"})
        assert body["national_code"] == "-4" and body["message"] == "卡片无应答"
        assert f"within {ANSWER_LIMIT:g} s" in body["message_en"]
        status, body = rig.call("/card/holder", slot)
        assert_refused(status, body, {"card_mute"})
        assert rig.call("/card/basic", 50)[1]["generation"] == 2
        with rig.service.national_ws() as ws:
            assert national_call(ws, "iReadCardBas", iType=3)["success"] in (0, -4)
        assert rig.service.get("/health").status_code == 200
    finally:
        release.set()
    wrapper.hook = None
    rig.service.wait_until(lambda: rig.call("/card/basic", slot)[0] == 200, "the reader to recover")
    assert "the card does not answer; the session is abandoned" in rig.service.log_text()
    rig.pull(50)


def test_a_mute_psam_gets_a_bounded_clean_error(rig: Rig, card: tuple[int, Wrapper]) -> None:
    """The PSAM stops answering in the middle of a flow that needs a key: the
    request ends with no_psam (-2201) after the configured limit instead of
    hanging with the key source's lock held, flows without a key keep
    working, and the PSAM is opened again once it answers."""
    slot, _ = card
    silent, release = threading.Event(), threading.Event()

    def hook(apdu: bytes) -> bytes | None:
        if len(apdu) > 1 and apdu[1] == 0xFA and not silent.is_set():
            silent.set()
            release.wait(60.0)
        return None

    rig.psam.hook = hook
    try:
        status, body = rig.call("/card/holder", slot)
        assert silent.is_set()
        assert_refused(status, body, {"no_psam"})
        assert body["national_code"] == "-2201"
        assert rig.call("/card/basic", slot)[0] == 200
        status, body = rig.call("/card/holder", slot)  # still silent: at once, the same error
        assert_refused(status, body, {"no_psam"})
    finally:
        release.set()
        rig.psam.hook = None
    rig.service.wait_until(lambda: rig.call("/card/holder", slot)[0] == 200, "the PSAM to answer again")
    assert rig.call("/card/holder", slot)[1]["ssn"]
