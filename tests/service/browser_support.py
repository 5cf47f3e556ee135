"""Helpers of the kiosk and PIN page browser tests (tests/service/test_kiosk*.py,
tests/service/test_pinpage*.py).

- :class:`LiveService`: the real service as ``sscard serve`` runs it (uvicorn,
  :mod:`terminal.service.server`) in a thread, on two free loopback ports
  (native + national), with every log record of the process captured to a
  file while it runs;
- :func:`inserted`: a virtual card in a vpcd slot of this area (12-13) for the
  duration of a ``with`` block, waiting until PC/SC sees it come and go;
- :class:`ForeignCard` (not a social security card) and :class:`TearingCard`
  (pulled out of the reader in the middle of a chosen command);
- :func:`chromium`: headless Debian Chromium driven by Playwright's sync API;
- :class:`RequestLog`: what a page sent (URLs, POST bodies) and received from
  its own API, for the "PIN only in a POST body" and masking checks;
- :func:`shot`: a screenshot kept under ``tests/service/artifacts/``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Request, Response, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from emulator.foreign import FOREIGN_ATR as FOREIGN_ATR
from emulator.foreign import ForeignCard as ForeignCard
from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card
from emulator.stack import PcscStack
from emulator.vpcd import CardWrapper, Tear, VirtualCard, VpcdLink
from terminal.service.config import ServiceConfig, config_from_mapping
from terminal.service.server import ServiceServer, bind_sockets

CARD_SLOT = 12
PSAM_SLOT = 13
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT: ViewportSize = {"width": 1280, "height": 960}
SW_FILE_NOT_FOUND = bytes.fromhex("6A82")
SW_INS_NOT_SUPPORTED = bytes.fromhex("6D00")
INS_SELECT = 0xA4
CARD_SEEN_SECONDS = 10.0


def service_config(
    stack: PcscStack, token_file: Path, **sections: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """A service configuration on this area's slots: card 12, PSAM 13, PIN page
    entry, no rate-limit delays; ``sections`` override or add keys."""
    card_reader = stack.reader_for_slot(CARD_SLOT)
    doc: dict[str, dict[str, Any]] = {
        "service": {"token_file": str(token_file), "card_wait_seconds": 2.0, "queue_wait_seconds": 10.0},
        "readers": {"card": card_reader, "kiosk": card_reader, "psam": stack.reader_for_slot(PSAM_SLOT)},
        "key_source": {"kind": "psam"},
        "pin": {
            "entry": "page",
            "entry_timeout_seconds": 30.0,
            "attempts_per_window": 100,
            "failure_delay_seconds": 0.0,
        },
    }
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    return doc


class _FileCapture(logging.Handler):
    """Every record of every logger, formatted with its traceback, into one file."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self._file = path.open("a", encoding="utf-8")
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self._file.write(self.format(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass
class LiveService:
    """The service as ``sscard serve`` runs it (:mod:`terminal.service.server`:
    both ports bound on loopback, port 0 = a free port) in a background thread,
    with every log record of the process captured while it runs."""

    doc: dict[str, dict[str, Any]]
    log_path: Path
    config: ServiceConfig | None = None
    _server: ServiceServer | None = field(default=None, repr=False)
    _capture: _FileCapture | None = field(default=None, repr=False)
    _root_level: int = logging.WARNING

    @property
    def base(self) -> str:
        assert self.config is not None
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def national_url(self) -> str:
        assert self.config is not None
        return f"ws://127.0.0.1:{self.config.national_port}"

    def start(self) -> None:
        doc = {name: dict(table) for name, table in self.doc.items()}
        doc.setdefault("service", {}).update(port=0, national_port=0)
        bound = bind_sockets(config_from_mapping(doc, source="<page tests>"))
        self.config = bound.config
        root = logging.getLogger()
        self._root_level = root.level
        self._capture = _FileCapture(self.log_path)
        root.addHandler(self._capture)
        root.setLevel(logging.DEBUG)
        try:
            self._server = ServiceServer(bound).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        root = logging.getLogger()
        if self._capture is not None:
            root.removeHandler(self._capture)
            self._capture.close()
            self._capture = None
        root.setLevel(self._root_level)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def assert_log_free_of(self, *secrets: str) -> None:
        """No secret (PIN, full SSN) anywhere in the service log so far."""
        text = self.log_text()
        assert text, "the service wrote no log at all"
        for secret in secrets:
            assert secret not in text, "a secret appears in the service log"


@contextmanager
def running_service(doc: dict[str, dict[str, Any]], log_path: Path) -> Iterator[LiveService]:
    service = LiveService(doc, log_path)
    service.start()
    try:
        yield service
    finally:
        service.stop()


# -- cards ---------------------------------------------------------------------------------------


def pull(link: VpcdLink, reader: str) -> None:
    """Take the card out in the middle of the flow (and wait until PC/SC sees it)."""
    link.remove()
    wait_for_card(reader, False)


class TearingCard(CardWrapper):
    """Wraps a card; once armed, the next command with INS ``ins`` pulls the card
    out of the reader without an answer (the command is not executed)."""

    def __init__(self, card: VirtualCard) -> None:
        super().__init__(card)
        self.ins: int | None = None
        self.torn = threading.Event()

    def arm(self, ins: int) -> None:
        self.ins = ins

    def process(self, apdu: bytes) -> bytes:
        if self.ins is not None and len(apdu) > 1 and apdu[1] == self.ins:
            self.ins = None
            self.torn.set()
            raise Tear()
        return self.card.process(apdu)


# -- browser ----------------------------------------------------------------------------------------


# How long a page may take to show what a test waits for.  Playwright's 5 s
# default is too short on a loaded 2-core CI machine (the page waits on a
# real card flow through pcscd); this is a ceiling, not a timing assertion.
PAGE_WAIT_MS = 30_000
expect.set_options(timeout=PAGE_WAIT_MS)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright (``playwright install`` is not used)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def opened(browser: Browser, url: str) -> Iterator[tuple[Page, RequestLog]]:
    """A fresh browser context (no shared state) with ``url`` loaded and its traffic recorded."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_WAIT_MS)
        log = RequestLog()
        page.on("request", log.on_request)
        page.on("response", log.on_response)
        page.goto(url)
        yield page, log
    finally:
        context.close()


@dataclass
class RequestLog:
    """URLs and POST bodies a page sent; bodies of the JSON answers it got."""

    urls: list[str] = field(default_factory=list)
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.urls.append(request.url)
        if request.method == "POST":
            self.posts.append((request.url, request.post_data_buffer or b""))

    def on_response(self, response: Response) -> None:
        if response.request.method != "POST":
            return
        try:
            self.answers.append((response.url, response.text()))
        except PlaywrightError:
            return  # a long poll cut short by the page leaving has no body

    def paths_with(self, secret: str) -> set[str]:
        """Paths of the POSTs whose body holds ``secret``."""
        return {
            url.split("://", 1)[1].split("/", 1)[1] for url, body in self.posts if secret.encode() in body
        }

    def assert_pin_only_in_bodies(self, pin: str, allowed: set[str]) -> None:
        """``pin`` in no URL, and only in POST bodies to paths starting with one of ``allowed``."""
        assert not any(pin in url for url in self.urls), "a PIN appears in a URL"
        paths = self.paths_with(pin)
        assert paths, "the PIN was never sent"
        stray = sorted(p for p in paths if not any(p.startswith(prefix) for prefix in allowed))
        assert not stray, f"the PIN went to {stray}"

    def assert_answers_free_of(self, *secrets: str) -> None:
        assert self.answers, "no answers recorded"
        for _, text in self.answers:
            for secret in secrets:
                assert secret not in text, "an answer to the page holds unmasked personal data"


def shot(page: Page, name: str) -> Path:
    """A screenshot kept as a test artefact (tests/service/artifacts/<name>.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def residue(page: Page) -> int:
    """Non-zero bytes left in the page's PIN buffers and PIN request bodies."""
    value = page.evaluate("window.SscardKeypad.residue()")
    assert isinstance(value, int)
    return value


def type_pin(page: Page, pin: str, *, keypad: str = "#keypad") -> None:
    """Touch the on-screen keys of ``pin``."""
    for digit in pin:
        page.click(f'{keypad} [data-key="{digit}"]')
