"""The kiosk page (/kiosk/) in headless Chromium against the real service.

A real uvicorn server of the service, virtual cards in vpcd slot 12 (card)
and 13 (PSAM), Debian Chromium under Playwright.  Paths: a person's whole
visit, a locked service password and a loss-reported card, a card that is
not a social security card, the card pulled out mid-flow (while typing and
during the command), the inactivity timeout, and a card the registry
refuses.  Screenshots go to tests/service/artifacts/kiosk-*.png.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import (
    CARD_SLOT,
    ForeignCard,
    LiveService,
    TearingCard,
    chromium,
    inserted,
    opened,
    pull,
    residue,
    running_service,
    service_config,
    shot,
    type_pin,
)
from playwright.sync_api import Browser, Page, expect

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.stack import PcscStack
from emulator.vpcd import VpcdLink
from terminal.service.pages import KIOSK_ASSETS, PIN_ASSETS

pytestmark = pytest.mark.pcsc

SSN = "110102197305211008"
NAME = "张三"
INITIAL_PIN = "211008"
WRONG_PIN = "135790"
NEW_PIN = "468024"
PIN_PATHS = {"kiosk/api/verify", "kiosk/api/change", "kiosk/api/block"}
IDLE_SECONDS = 4.0
MESSAGE_SECONDS = 1.5
INS_VERIFY = 0x20
COUNTER_ORIGIN = "https://counter.example.cn"


@pytest.fixture(scope="module")
def kiosk(
    pcsc_stack: PcscStack, psam: VpcdLink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The service under uvicorn for this module (the PSAM: conftest's session fixture, slot 13)."""
    tmp = tmp_path_factory.mktemp("kiosk")
    doc = service_config(
        pcsc_stack,
        tmp / "token",
        service={"origins": [COUNTER_ORIGIN]},
        kiosk={"idle_timeout_seconds": IDLE_SECONDS, "message_seconds": MESSAGE_SECONDS, "poll_ms": 200},
    )
    with running_service(doc, tmp / "service.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def card(*, life_cycle: LifeCycle = LifeCycle.ACTIVE, tries_left: int | None = None) -> CardOS:
    image = demo_card_image(3, life_cycle=life_cycle)
    if tries_left is not None:
        image.pin.tries_left = tries_left
    return CardOS(image)


def screen(page: Page, name: str) -> None:
    expect(page.locator("body")).to_have_attribute("data-screen", name)


def message(page: Page, key: str) -> None:
    screen(page, "message")
    expect(page.locator("body")).to_have_attribute("data-message", key)


def kiosk_url(server: LiveService) -> str:
    return f"{server.base}/kiosk/"


def test_kiosk_full_visit(kiosk: LiveService, browser: Browser, card_reader: str) -> None:
    """Insert, masked data, wrong then right PIN, change PIN, status, loss report, English, exit."""
    with opened(browser, kiosk_url(kiosk)) as (page, traffic):
        screen(page, "start")
        expect(page.locator("#take-card")).to_be_hidden()
        shot(page, "kiosk-01-insert-card")
        with inserted(card(), CARD_SLOT, card_reader):
            screen(page, "info")
            expect(page.locator("#info-name")).to_have_text("张*")
            expect(page.locator("#info-ssn")).to_have_text("110102***********8")
            expect(page.locator("#info-pin")).to_contain_text("初始密码")
            expect(page.locator("#info-notice")).to_contain_text("初始服务密码")
            shot(page, "kiosk-02-holder-masked")
            content = page.content()
            assert SSN not in content and NAME not in content

            page.click("#menu-verify")
            screen(page, "pin")
            type_pin(page, WRONG_PIN)
            expect(page.locator("#pin-dots")).to_have_attribute("data-count", "6")
            assert WRONG_PIN not in page.content()
            shot(page, "kiosk-03-keypad")
            page.click("#pin-ok")
            message(page, "pin_wrong")
            expect(page.locator("#message-text")).to_have_text("服务密码错误，还可尝试 2 次")
            assert residue(page) == 0
            shot(page, "kiosk-04-wrong-pin")

            page.click("#message-retry")
            screen(page, "pin")
            type_pin(page, INITIAL_PIN)
            page.click("#pin-ok")
            message(page, "result_verify_ok")
            assert residue(page) == 0
            shot(page, "kiosk-05-pin-verified")

            page.click("#message-back")
            screen(page, "info")
            page.click("#menu-change")
            expect(page.locator("body")).to_have_attribute("data-step", "old")
            type_pin(page, INITIAL_PIN)
            page.click("#pin-ok")
            expect(page.locator("body")).to_have_attribute("data-step", "new")
            type_pin(page, NEW_PIN)
            page.click("#pin-ok")
            expect(page.locator("body")).to_have_attribute("data-step", "again")
            type_pin(page, "468025")
            page.click("#pin-ok")
            expect(page.locator("body")).to_have_attribute("data-step", "new")
            expect(page.locator("#pin-problem")).to_have_text("两次输入的新密码不一致，请重新输入")
            shot(page, "kiosk-06-new-pins-differ")
            type_pin(page, NEW_PIN)
            page.click("#pin-ok")
            type_pin(page, NEW_PIN)
            page.click("#pin-ok")
            message(page, "result_change_ok")
            assert residue(page) == 0
            shot(page, "kiosk-07-pin-changed")

            page.click("#message-back")
            expect(page.locator("#info-pin")).to_contain_text("正常")
            expect(page.locator("#info-notice")).to_be_hidden()
            page.click("#menu-status")
            screen(page, "status")
            expect(page.locator("#status-life-cycle")).to_have_text("正常")
            expect(page.locator("#status-pin")).to_have_text("正常 · 剩余尝试次数：3")
            shot(page, "kiosk-08-status")

            page.click("#status-back")
            page.click("#menu-block")
            screen(page, "confirm")
            shot(page, "kiosk-09-loss-report-confirm")
            page.click("#confirm-ok")
            expect(page.locator("body")).to_have_attribute("data-step", "block")
            type_pin(page, NEW_PIN)
            page.click("#pin-ok")
            message(page, "result_block_ok")
            shot(page, "kiosk-10-loss-reported")

            page.click("#message-back")
            expect(page.locator("#info-notice")).to_contain_text("本卡已临时挂失")
            for button in ("#menu-verify", "#menu-change", "#menu-block"):
                expect(page.locator(button)).to_be_disabled()
            page.click("#menu-status")
            expect(page.locator("#status-life-cycle")).to_have_text("临时挂失")

            page.click("#lang")
            expect(page.locator("h1")).to_have_text("Beijing Social Security Card Self-Service")
            expect(page.locator("#status-life-cycle")).to_have_text("temporarily reported lost")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            shot(page, "kiosk-11-status-english")

            page.click("#status-back")
            page.click("#menu-exit")
            screen(page, "start")
            expect(page.locator("#take-card")).to_be_visible()
            expect(page.locator("h1")).to_have_text("北京市社会保障卡自助服务")
            expect(page.locator("#info-name")).to_have_text("")
            expect(page.locator("#insert-prompt")).to_be_hidden()
            shot(page, "kiosk-12-take-card")
        expect(page.locator("#take-card")).to_be_hidden()
        expect(page.locator("#insert-prompt")).to_be_visible()

        traffic.assert_pin_only_in_bodies(WRONG_PIN, {"kiosk/api/verify"})
        traffic.assert_pin_only_in_bodies(INITIAL_PIN, {"kiosk/api/verify", "kiosk/api/change"})
        traffic.assert_pin_only_in_bodies(NEW_PIN, PIN_PATHS)
        traffic.assert_answers_free_of(SSN, NAME)
    kiosk.assert_log_free_of(WRONG_PIN, INITIAL_PIN, NEW_PIN, "468025", SSN)


def test_kiosk_locked_cards(kiosk: LiveService, browser: Browser, card_reader: str) -> None:
    """The last wrong PIN locks the password; a loss-reported card offers status only."""
    with opened(browser, kiosk_url(kiosk)) as (page, _traffic):
        screen(page, "start")
        with inserted(card(tries_left=1), CARD_SLOT, card_reader):
            screen(page, "info")
            expect(page.locator("#info-pin")).to_contain_text("剩余尝试次数：1")
            page.click("#menu-verify")
            type_pin(page, WRONG_PIN)
            page.click("#pin-ok")
            message(page, "pin_wrong")
            expect(page.locator("#message-text")).to_contain_text("服务密码已锁定")
            expect(page.locator("#message-retry")).to_be_hidden()
            shot(page, "kiosk-20-pin-locked-now")
            page.click("#message-back")
            screen(page, "info")
            expect(page.locator("#info-pin")).to_contain_text("已锁定")
            expect(page.locator("#info-notice")).to_contain_text("服务密码已锁定")
            for button in ("#menu-verify", "#menu-change", "#menu-block"):
                expect(page.locator(button)).to_be_disabled()
            expect(page.locator("#menu-status")).to_be_enabled()
            shot(page, "kiosk-21-pin-locked")
        message(page, "removed_text")
        screen(page, "start")

        with inserted(card(life_cycle=LifeCycle.TEMPORARILY_BLOCKED), CARD_SLOT, card_reader):
            screen(page, "info")
            expect(page.locator("#info-name")).to_have_text("—")
            expect(page.locator("#info-life-cycle")).to_have_text("临时挂失")
            expect(page.locator("#info-notice")).to_contain_text("本卡已临时挂失")
            expect(page.locator("#menu-verify")).to_be_disabled()
            shot(page, "kiosk-22-loss-reported-card")
    kiosk.assert_log_free_of(WRONG_PIN, SSN)


def test_kiosk_wrong_card(kiosk: LiveService, browser: Browser, card_reader: str) -> None:
    with opened(browser, kiosk_url(kiosk)) as (page, _traffic):
        screen(page, "start")
        with inserted(ForeignCard(), CARD_SLOT, card_reader):
            message(page, "wrong_card_type")
            expect(page.locator("#message-text")).to_have_text("无法识别此卡，请取出后插入社会保障卡")
            shot(page, "kiosk-30-wrong-card")
            screen(page, "start")
            expect(page.locator("#take-card")).to_be_visible()
        expect(page.locator("#take-card")).to_be_hidden()


def test_kiosk_card_removed_mid_flow(kiosk: LiveService, browser: Browser, card_reader: str) -> None:
    """Pulled while typing the PIN, then pulled during the VERIFY command itself."""
    with opened(browser, kiosk_url(kiosk)) as (page, _traffic):
        screen(page, "start")
        with inserted(card(), CARD_SLOT, card_reader) as link:
            screen(page, "info")
            page.click("#menu-verify")
            type_pin(page, "211")
            expect(page.locator("#pin-dots")).to_have_attribute("data-count", "3")
            pull(link, card_reader)
            message(page, "removed_text")
            expect(page.locator("#message-title")).to_have_text("卡片已取出")
            assert residue(page) == 0
            expect(page.locator("#info-name")).to_have_text("")
            shot(page, "kiosk-40-removed-while-typing")
            screen(page, "start")
            expect(page.locator("#take-card")).to_be_hidden()

        tearing = TearingCard(card())
        with inserted(tearing, CARD_SLOT, card_reader):
            screen(page, "info")
            page.click("#menu-verify")
            type_pin(page, INITIAL_PIN)
            tearing.arm(INS_VERIFY)
            page.click("#pin-ok")
            message(page, "removed_text")
            assert tearing.torn.is_set()
            assert residue(page) == 0
            shot(page, "kiosk-41-removed-during-verify")
    kiosk.assert_log_free_of(INITIAL_PIN, SSN)


def test_kiosk_inactivity_returns_to_start(kiosk: LiveService, browser: Browser, card_reader: str) -> None:
    with opened(browser, kiosk_url(kiosk)) as (page, _traffic):
        screen(page, "start")
        with inserted(card(), CARD_SLOT, card_reader):
            screen(page, "info")
            page.click("#lang")
            page.click("#menu-verify")
            type_pin(page, "2110")
            expect(page.locator("#idle-warning")).to_be_visible()
            shot(page, "kiosk-50-idle-warning")
            screen(page, "start")
            assert residue(page) == 0
            expect(page.locator("#take-card")).to_be_visible()
            expect(page.locator("#info-ssn")).to_have_text("")
            expect(page.locator("body")).to_have_attribute("data-lang", "zh")
            expect(page.locator("body")).not_to_have_attribute("data-step", "verify")
            shot(page, "kiosk-51-after-timeout")
            page.click("#resume")
            screen(page, "info")
            expect(page.locator("#info-name")).to_have_text("张*")


def test_kiosk_api_refuses_other_origins(kiosk: LiveService) -> None:
    """Only the service's own pages may call the kiosk API; the page is not frameable."""
    with httpx.Client(base_url=kiosk.base, timeout=10) as client:
        page = client.get("/kiosk/")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        for origin in (None, COUNTER_ORIGIN, "http://evil.example"):
            headers = {"Origin": origin} if origin else {}
            refused = client.post("/kiosk/api/read", json={}, headers=headers)
            assert refused.status_code == 403
            assert refused.json()["error"] == "origin_refused"
        preflight = client.options(
            "/kiosk/api/verify",
            headers={"Origin": COUNTER_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers.get("access-control-allow-origin") in (None, COUNTER_ORIGIN)
        own = client.post("/kiosk/api/card", json={}, headers={"Origin": kiosk.base})
        assert own.status_code == 200
        assert own.json()["present"] is False
        settings = client.get("/kiosk/settings.json").json()
        assert settings["idle_timeout_ms"] == int(IDLE_SECONDS * 1000)
        assert settings["texts"]["zh"]["insert_title"] == "请插入社会保障卡"
        assert set(settings["texts"]["zh"]) == set(settings["texts"]["en"])
        assert client.get("/kiosk/nothing.js").status_code == 404


def test_kiosk_static_files_are_package_data() -> None:
    """Every file the page routes serve exists and is matched by pyproject's package-data."""
    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]
    patterns = [*package_data["*"], *package_data.get("terminal.service", [])]
    shipped = [*KIOSK_ASSETS.values(), *PIN_ASSETS.values()]
    for folder, file in shipped:
        assert (root / "terminal" / "service" / folder / file).is_file()
        assert any(fnmatch.fnmatch(f"{folder}/{file}", pattern) for pattern in patterns), file
    for name in ("kiosk", "pinpage"):
        assert any(fnmatch.fnmatch(f"data/{name}.toml", pattern) for pattern in patterns)


def test_kiosk_card_refused_by_the_registry(
    pcsc_stack: PcscStack,
    psam: VpcdLink,
    browser: Browser,
    card_reader: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kiosk with the card status registry: a card reported lost at the counter
    is refused when presented (blocked on the card) and the holder reads why
    and where to go, in Chinese and English."""
    from terminal.registry import Actor, open_registry

    monkeypatch.setenv("SSCARD_DB_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    registry, _ = open_registry()
    lost = card()
    card_id = lost.image.card_id.hex().upper()
    try:
        registry.register_holder(SSN, NAME, gender="1", birth_date="1973-05-21")
        registry.register_card(card_id, "X00000019", SSN, 3, "BOB", "2025-03-01", "2035-02-28", "active")
        registry.report_loss_formal(card_id, Actor(operator="op-9", terminal="T-KIOSK-9"))
    finally:
        registry.close()
    doc = service_config(
        pcsc_stack,
        tmp_path / "token",
        journal={"kind": "registry", "operator": "kiosk"},
        kiosk={"idle_timeout_seconds": 60.0, "message_seconds": 30.0, "poll_ms": 200},
    )
    with (
        running_service(doc, tmp_path / "service.log") as server,
        opened(browser, kiosk_url(server)) as (page, _traffic),
    ):
        screen(page, "start")
        with inserted(lost, CARD_SLOT, card_reader):
            message(page, "card_refused")
            text = page.locator("#message-text")
            expect(text).to_contain_text("卡片已正式挂失")
            expect(text).to_contain_text("请携带身份证件到社保卡服务网点办理")
            shot(page, "kiosk-40-card-refused")
            page.click("#lang")
            expect(text).to_contain_text("cannot be used here. Please bring your ID to a card service point.")
        assert lost.image.life_cycle is LifeCycle.TEMPORARILY_BLOCKED
    server.assert_log_free_of(SSN)
