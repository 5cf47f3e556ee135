"""The soak (issue 11): many mixed flows against four virtual cards through
the local service, with the service process's memory and open file
descriptors measured at the start and the end.

The mix is data (``data/soak.toml``): reads, national-format reads, status,
authenticity, PIN verify, generic writes, wallet load / purchase / balance /
records (where the card has a wallet) over the HTTP API, iReadCardBas and
iReadCard over the national WebSocket (the card in slot 48), and the only
injected errors: a wrong PIN (-51) and a card pulled out before a request
(-2).  One worker thread per card runs its share of the flows against the
service process (rel_rig); after a wrong PIN the worker's next flow is a
correct verify, so no PIN is ever blocked.  Every other answer than 200 and
the injected ones is an unexpected error and fails the soak.
"""

from __future__ import annotations

import json
import random
import threading
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rel_rig import EF07_PHONE, Rig
from rel_service import national_call
from websockets.sync.client import ClientConnection

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS

DATA = Path(__file__).with_name("data") / "soak.toml"
WRONG_PIN = "975318"
SAMPLE_SECONDS = 1.0


@dataclass(frozen=True)
class FlowSpec:
    name: str
    weight: int
    path: str | None = None
    national: str | None = None
    wallet: bool = False
    injected: dict[str, Any] | None = None


def load_mix() -> tuple[dict[int, tuple[int, str, str]], list[FlowSpec]]:
    doc = tomllib.loads(DATA.read_text(encoding="utf-8"))
    cards = {
        int(slot): (int(gen), str(interface), str(holder))
        for slot, (gen, interface, holder) in doc["cards"].items()
    }
    flows = [
        FlowSpec(
            name,
            int(row["weight"]),
            row.get("path"),
            row.get("national"),
            bool(row.get("wallet", False)),
            row.get("injected"),
        )
        for name, row in doc["flows"].items()
    ]
    return cards, flows


@dataclass
class Usage:
    """One measurement of the service process."""

    rss_kib: int
    fds: int
    threads: int
    fd_kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rss_kib": self.rss_kib, "fds": self.fds, "threads": self.threads, "fd_kinds": self.fd_kinds}


@dataclass
class SoakReport:
    flows: int = 0
    seconds: float = 0.0
    by_flow: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    start: Usage | None = None
    end: Usage | None = None
    peak_rss_kib: int = 0
    peak_fds: int = 0
    events: int = 0

    @property
    def rss_growth_kib(self) -> int:
        assert self.start is not None and self.end is not None
        return self.end.rss_kib - self.start.rss_kib

    @property
    def fd_growth(self) -> int:
        assert self.start is not None and self.end is not None
        return self.end.fds - self.start.fds

    def to_dict(self) -> dict[str, Any]:
        assert self.start is not None and self.end is not None
        return {
            "flows": self.flows,
            "seconds": round(self.seconds, 1),
            "flows_per_second": round(self.flows / self.seconds, 1) if self.seconds else None,
            "by_flow": dict(sorted(self.by_flow.items())),
            "injected": dict(sorted(self.injected.items())),
            "unexpected": self.unexpected[:20],
            "unexpected_count": len(self.unexpected),
            "start": self.start.to_dict(),
            "end": self.end.to_dict(),
            "rss_growth_kib": self.rss_growth_kib,
            "fd_growth": self.fd_growth,
            "peak_rss_kib": self.peak_rss_kib,
            "peak_fds": self.peak_fds,
            "events_received": self.events,
        }

    def summary(self) -> str:
        return "soak: " + json.dumps(self.to_dict(), ensure_ascii=False)


class CardWorker:
    """The flows of one card, from one thread."""

    def __init__(
        self, rig: Rig, slot: int, card: CardOS, flows: list[FlowSpec], count: int, seed: int, national: bool
    ) -> None:
        self.rig = rig
        self.slot = slot
        self.reader = rig.reader(slot)
        self.card = card
        self.pin = card.image.pin.value
        self.count = count
        self.random = random.Random(seed)
        has_wallet = card.image.profile != "gen1"  # generation 1 has no transport wallet
        self.flows = [f for f in flows if (has_wallet or not f.wallet) and (national or f.national is None)]
        self.weights = [f.weight for f in self.flows]
        self.by_name = {f.name: f for f in self.flows}
        self.done: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.wrong_pending = False
        self.previous = "-"
        self.balance = 0
        self.writes = 0
        self.http: httpx.Client | None = None
        self.ws: ClientConnection | None = None
        self._ws_cm: Any = None

    # -- running --------------------------------------------------------------------------------

    def run(self, progress: Counter[str], lock: threading.Lock) -> None:
        self.http = self.rig.service.client()
        try:
            for _ in range(self.count):
                flow = self.next_flow()
                self.execute(flow)
                with lock:
                    progress["done"] += 1
        except Exception as exc:
            self.unexpected.append(f"{self.reader}: worker stopped: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()
            if self._ws_cm is not None:
                self._ws_cm.__exit__(None, None, None)

    def next_flow(self) -> FlowSpec:
        if self.wrong_pending:
            return self.by_name["verify"]
        flow = self.random.choices(self.flows, self.weights)[0]
        if flow.name == "wallet_purchase" and self.balance < 1:
            return self.by_name["wallet_load"]
        return flow

    def execute(self, flow: FlowSpec) -> None:
        self.done[flow.name] += 1
        before = len(self.unexpected)
        if flow.national is not None:
            self._national(flow)
        elif flow.name == "removed_card":
            self._pull_and_ask(flow, self._body(flow))
        else:
            assert self.http is not None and flow.path is not None
            answer = self.http.post(f"/api/v1{flow.path}", json=self._body(flow))
            self._check(flow, answer.status_code, answer.json())
        if len(self.unexpected) > before:
            self.unexpected[-1] += f" (after {self.previous})"
        self.previous = flow.name

    def _body(self, flow: FlowSpec) -> dict[str, Any]:
        body: dict[str, Any] = {"reader": self.reader}
        if flow.name == "verify":
            body["pin"] = self.pin
        elif flow.name == "wrong_pin":
            body["pin"] = WRONG_PIN
        elif flow.name == "read_ef07":
            body["address"] = EF07_PHONE
        elif flow.name == "write_ef07":
            self.writes += 1
            body.update(address=EF07_PHONE, data=[f"139{self.slot:02d}{self.writes % 1_000_000:06d}"])
        elif flow.name in ("wallet_load", "wallet_purchase"):
            body["amount"] = "0.01"
        return body

    def _check(self, flow: FlowSpec, status: int, body: dict[str, Any]) -> None:
        if flow.injected is not None:
            expected = flow.injected
            got = (status, body.get("error"), body.get("national_code"))
            if got == (expected["status"], expected["error"], expected["national_code"]):
                self.injected[flow.name] += 1
                self.wrong_pending = flow.name == "wrong_pin"
                return
            self.unexpected.append(f"{self.reader} {flow.name}: {got}")
            return
        if status != 200:
            self.unexpected.append(
                f"{self.reader} {flow.name}: {status} {body.get('error')} "
                f"{body.get('national_code')} {str(body.get('message_en'))[:120]}"
            )
            return
        if flow.name == "verify":
            self.wrong_pending = False
        if flow.name in ("wallet_balance", "wallet_load", "wallet_purchase"):
            self.balance = int(body["balance_fen"])
        if flow.name == "write_ef07":
            self._check_written()

    def _check_written(self) -> None:
        assert self.http is not None
        answer = self.http.post(
            "/api/v1/card/read", json={"reader": self.reader, "address": EF07_PHONE}
        ).json()
        expected = f"139{self.slot:02d}{self.writes % 1_000_000:06d}"
        if answer.get("records", [{}])[0].get("value") != expected:
            self.unexpected.append(
                f"{self.reader} write_ef07: read back {answer.get('records')}, not {expected}"
            )

    def _pull_and_ask(self, flow: FlowSpec, body: dict[str, Any]) -> None:
        assert self.http is not None and flow.path is not None
        link = self.rig.links[self.slot]
        link.remove()
        self.rig.wait_card(self.slot, present=False)
        answer = self.http.post(f"/api/v1{flow.path}", json=body)
        self._check(flow, answer.status_code, answer.json())
        link.insert()
        self.rig.wait_card(self.slot)

    def _national(self, flow: FlowSpec) -> None:
        if self.ws is None:
            self._ws_cm = self.rig.service.national_ws()
            self.ws = self._ws_cm.__enter__()
        assert self.ws is not None and flow.national is not None
        args: dict[str, Any] = {"iType": 3}
        if flow.national == "iReadCard":
            args.update(iAuthType=1, pCardInfo="", pFileAddr=EF07_PHONE)
        answer = national_call(self.ws, flow.national, **args)
        if answer.get("success") != 0:
            self.unexpected.append(
                f"national {flow.national}: {answer.get('success')} {answer.get('message')}"
            )


def insert_cards(rig: Rig) -> dict[int, CardOS]:
    cards, _ = load_mix()
    made: dict[int, CardOS] = {}
    for slot, (generation, interface, holder) in cards.items():
        image = demo_card_image(generation, life_cycle=LifeCycle.ACTIVE, holder=holder)
        card = CardOS(image, interface=interface)  # type: ignore[arg-type]
        rig.put(slot, card)
        made[slot] = card
    for slot in made:
        rig.wait_card(slot)
    return made


def usage(rig: Rig, *, settle: float = 0.0) -> Usage:
    """The service's memory, descriptors and threads (after ``settle`` seconds,
    for closed client connections to be closed on the service's side too)."""
    if settle:
        time.sleep(settle)
    service = rig.service
    return Usage(service.rss_kib(), service.fds(), service.threads(), service.fd_kinds())


def _every_flow_once(
    rig: Rig, cards: dict[int, CardOS], flows: list[FlowSpec], national_slot: int
) -> list[str]:
    """Each card runs each of its flows once, one card after the other."""
    problems: list[str] = []
    for slot, card in cards.items():
        worker = CardWorker(rig, slot, card, flows, 0, 0, slot == national_slot)
        worker.http = rig.service.client()
        try:
            for flow in worker.flows:
                worker.execute(flow)
                if worker.wrong_pending:
                    worker.execute(worker.by_name["verify"])
        finally:
            worker.http.close()
            if worker._ws_cm is not None:
                worker._ws_cm.__exit__(None, None, None)
        problems += worker.unexpected
    return problems


def _run_workers(rig: Rig, workers: list[CardWorker], peaks: list[int] | None = None) -> float:
    """All workers at once (one thread each); the peaks of RSS and descriptors sampled meanwhile."""
    progress: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            if peaks is not None:
                peaks[0] = max(peaks[0], rig.service.rss_kib())
                peaks[1] = max(peaks[1], rig.service.fds())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=w.run, args=(progress, lock), daemon=True) for w in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    return elapsed


def _workers(
    rig: Rig, cards: dict[int, CardOS], flows: list[FlowSpec], total: int, seed: int, national_slot: int
) -> list[CardWorker]:
    share, extra = divmod(total, len(cards))
    return [
        CardWorker(
            rig, slot, card, flows, share + (1 if i < extra else 0), seed + slot, slot == national_slot
        )
        for i, (slot, card) in enumerate(sorted(cards.items()))
    ]


def run_soak(
    rig: Rig, cards: dict[int, CardOS], total: int, *, seed: int = 11, warmup: int = 100
) -> SoakReport:
    """Warm up (every flow of every card once, then ``warmup`` flows with all
    cards at once: not counted), measure, run ``total`` flows split over the
    cards, measure again (both measurements with every client disconnected)."""
    _, flows = load_mix()
    report = SoakReport()
    national_slot = min(cards)
    report.unexpected += [f"warm-up: {u}" for u in _every_flow_once(rig, cards, flows, national_slot)]
    warm = _workers(rig, cards, flows, warmup, seed * 7919, national_slot)
    _run_workers(rig, warm)
    report.unexpected += [f"warm-up: {u}" for w in warm for u in w.unexpected]
    report.start = usage(rig, settle=1.0)
    workers = _workers(rig, cards, flows, total, seed, national_slot)
    peaks = [report.start.rss_kib, report.start.fds]
    report.seconds = _run_workers(rig, workers, peaks)
    report.end = usage(rig, settle=1.0)
    report.peak_rss_kib, report.peak_fds = peaks
    for worker in workers:
        report.flows += sum(worker.done.values())
        report.by_flow.update(worker.done)
        report.injected.update(worker.injected)
        report.unexpected += worker.unexpected
    return report
