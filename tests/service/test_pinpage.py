"""The PIN page (/pin/) in headless Chromium: a counter application calls the
national iVerifyPIN / iChangePIN over the national WebSocket without a PIN,
the holder types it on the service's own PIN page, the counter application
gets only the national answer.  Screenshots: tests/service/artifacts/pinpage-*.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from browser_support import (
    CARD_SLOT,
    LiveService,
    chromium,
    inserted,
    opened,
    residue,
    running_service,
    service_config,
    shot,
    type_pin,
)
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink

pytestmark = pytest.mark.pcsc

SSN = "110102197305211008"
INITIAL_PIN = "211008"
WRONG_PIN = "135790"
NEW_PIN = "468024"
TYPO_PIN = "468025"
COUNTER_ORIGIN = "https://counter.example.cn"
ANSWER_SECONDS = 30.0
PIN_API = "pin/api/entries/"


@pytest.fixture(scope="module")
def pin_service(
    pcsc_stack: PcscStack, psam: VpcdLink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("pinpage")
    doc = service_config(pcsc_stack, tmp / "token", service={"origins": [COUNTER_ORIGIN]})
    with running_service(doc, tmp / "service.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def national_call(url: str, message: dict[str, Any]) -> dict[str, Any]:
    """What existing counter software does: one JSON request, one JSON answer."""
    with connect(url, open_timeout=5) as socket:
        socket.send(json.dumps(message))
        answer = json.loads(socket.recv(timeout=ANSWER_SECONDS))
    assert isinstance(answer, dict)
    return answer


def phase(page: Page, name: str) -> None:
    expect(page.locator("body")).to_have_attribute("data-phase", name)


def step(page: Page, name: str) -> None:
    phase(page, "entry")
    expect(page.locator("body")).to_have_attribute("data-step", name)


def test_pinpage_national_verify_and_change(
    pin_service: LiveService, browser: Browser, card_reader: str
) -> None:
    answers: list[dict[str, Any]] = []

    def call(pool: ThreadPoolExecutor, function: str) -> Future[dict[str, Any]]:
        return pool.submit(national_call, pin_service.national_url, {"function": function, "iType": 3})

    def done(future: Future[dict[str, Any]]) -> dict[str, Any]:
        answer = future.result(timeout=ANSWER_SECONDS)
        answers.append(answer)
        return answer

    card = CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE))
    with (
        opened(browser, f"{pin_service.base}/pin/") as (page, traffic),
        ThreadPoolExecutor(max_workers=1) as pool,
        inserted(card, CARD_SLOT, card_reader),
    ):
        phase(page, "idle")
        shot(page, "pinpage-01-waiting")

        pending = call(pool, "iVerifyPIN")
        step(page, "pin")
        expect(page.locator("#entry-kind")).to_have_text("验证服务密码")
        expect(page.locator("#entry-title")).to_have_text("请输入服务密码")
        type_pin(page, WRONG_PIN)
        shot(page, "pinpage-02-keypad")
        page.click("#entry-ok")
        phase(page, "result")
        expect(page.locator("#result-text")).to_have_text("服务密码错误")
        answer = done(pending)
        assert (answer["function"], answer["success"]) == ("iVerifyPIN", -51)
        assert residue(page) == 0
        shot(page, "pinpage-03-wrong-pin")

        pending = call(pool, "iVerifyPIN")
        step(page, "pin")
        page.click("#lang")
        expect(page.locator("#entry-title")).to_have_text("Enter your service password")
        type_pin(page, INITIAL_PIN)
        page.click("#entry-ok")
        expect(page.locator("#result-text")).to_have_text("Password verified")
        assert done(pending)["success"] == 0

        pending = call(pool, "iChangePIN")
        step(page, "old")
        expect(page.locator("#entry-kind")).to_have_text("Change service password")
        page.click("#lang")
        expect(page.locator("#entry-kind")).to_have_text("修改服务密码")
        type_pin(page, INITIAL_PIN)
        page.click("#entry-ok")
        step(page, "new")
        type_pin(page, NEW_PIN)
        page.click("#entry-ok")
        step(page, "again")
        type_pin(page, TYPO_PIN)
        page.click("#entry-ok")
        step(page, "new")
        expect(page.locator("#entry-problem")).to_have_text("两次输入的新密码不一致，请重新输入新密码")
        shot(page, "pinpage-04-new-pins-differ")
        type_pin(page, NEW_PIN)
        page.click("#entry-ok")
        type_pin(page, NEW_PIN)
        page.click("#entry-ok")
        expect(page.locator("#result-text")).to_have_text("服务密码修改成功，请牢记新密码")
        assert done(pending)["success"] == 0
        shot(page, "pinpage-05-changed")

        pending = call(pool, "iVerifyPIN")
        step(page, "pin")
        type_pin(page, "46")
        page.click("#entry-cancel")
        expect(page.locator("#result-text")).to_have_text("已取消密码输入")
        assert done(pending)["success"] == -31
        assert residue(page) == 0

        pending = call(pool, "iVerifyPIN")
        step(page, "pin")
        type_pin(page, NEW_PIN)
        page.click("#entry-ok")
        expect(page.locator("#result-text")).to_have_text("服务密码验证通过")
        assert done(pending)["success"] == 0

        for pin in (WRONG_PIN, INITIAL_PIN, NEW_PIN):
            traffic.assert_pin_only_in_bodies(pin, {PIN_API})
        assert not traffic.paths_with(TYPO_PIN), "the mistyped repetition left the page"
    text = json.dumps(answers, ensure_ascii=False)
    for secret in (WRONG_PIN, INITIAL_PIN, NEW_PIN, TYPO_PIN, SSN):
        assert secret not in text
    pin_service.assert_log_free_of(WRONG_PIN, INITIAL_PIN, NEW_PIN, TYPO_PIN, SSN)


def test_pinpage_no_card_answers_minus_two(pin_service: LiveService, browser: Browser) -> None:
    """Without a card the national call fails at once and no keypad appears."""
    with opened(browser, f"{pin_service.base}/pin/") as (page, _traffic):
        phase(page, "idle")
        answer = national_call(pin_service.national_url, {"function": "iVerifyPIN", "iType": 3})
        assert answer["success"] == -2
        phase(page, "idle")


def test_pinpage_api_only_for_its_own_page(pin_service: LiveService) -> None:
    """An allowed counter origin reaches the native API but never the PIN page's API."""
    with httpx.Client(base_url=pin_service.base, timeout=10) as client:
        page = client.get("/pin/")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        for origin in (None, COUNTER_ORIGIN):
            headers = {"Origin": origin} if origin else {}
            for path in ("/pin/api/pending", "/pin/api/entries/x", "/pin/api/entries/x/cancel"):
                refused = client.post(path, json={}, headers=headers)
                assert refused.status_code == 403, path
                assert refused.json()["error"] == "origin_refused"
        own = {"Origin": pin_service.base}
        assert client.post("/pin/api/pending", json={}, headers=own).json() == {"entries": []}
        gone = client.post("/pin/api/entries/nothing", content=b"123456", headers=own)
        assert gone.status_code == 404
        too_long = client.post("/pin/api/entries/nothing", content=b"1" * 1000, headers=own)
        assert too_long.status_code == 422
        settings = client.get("/pin/settings.json").json()
        assert (settings["min_digits"], settings["max_digits"]) == (6, 6)
        assert set(settings["texts"]["zh"]) == set(settings["texts"]["en"])
