"""The bad input table (data/bad_inputs.toml): every bad value through every
place it enters sscard (Python API, CLI, native service API, national
interface) gets its documented error (error id + national code) and writes
nothing, checked at the card and in the registry (rel_bad_inputs.py).

The CLI runs against a card in vpcd slot 10 (reliability slots 8-11); the
service and the national interface run over an in-process card backend."""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner, Result
from rel_bad_inputs import Case, assert_nothing_written, cases, ids, params, registry_state
from rel_tear import ACTOR, anchors, persistent, psam_source

from apdu.errors import SscardError
from apdu.inprocess import InProcessTransport
from apdu.transport import Transport
from card_model.demo import demo_card_image, demo_key_set, demo_psam_image, demo_stock_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.presence import inserted
from emulator.psam import PsamCard
from emulator.stack import PcscStack
from emulator.vpcd import CardWrapper
from terminal import flows
from terminal.cli import cli
from terminal.flows import wallet
from terminal.flows.issuance import issue_card
from terminal.issuance import IssuanceOrder
from terminal.journal_hook import MemoryJournal, RegistryJournal
from terminal.keysource import PsamKeySource
from terminal.keysource.base import KeySource
from terminal.readers import ReaderInfo, classify
from terminal.registry import open_registry
from terminal.service.app import create_app
from terminal.service.config import config_from_mapping
from terminal.service.pinentry import ScriptedPinEntry
from terminal.service.tokens import AccessToken
from terminal.session import CardSession
from terminal.watch import ReaderEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CLI_SLOT = 10
NOW = dt.datetime(2026, 6, 1, 9, 30)
DEMO_CARD_ID = "110102D1560000051342A7D2CDFACC19"
TOKEN = "reliability-bad-input-token-" + "z" * 30
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "http://127.0.0.1:18080"
NATIONAL_WS = "ws://127.0.0.1:18081/"
ORIGIN = "https://counter.example.cn"
STOCK_NUMBER = 7100

Outcome = tuple[str | None, int]


def _card(case: Case) -> CardOS:
    """The card a case's entry meets: a blank stock card for issuance, an
    active card for wallet and file writes, a personalised one for PINs."""
    if case.kind == "holder":
        return CardOS(demo_stock_card_image(STOCK_NUMBER))
    if case.kind in ("amount", "address"):
        return CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE))
    return CardOS(demo_card_image(3))


def _initial_pin() -> str:
    return flows.initial_pin_of(str(_order_ssn()))


def _order_ssn() -> str:
    from card_model.demo import demo_holder

    person, _ = demo_holder("gen3")
    return str(person.to_mapping()["ssn"])


def _check(where: str, outcome: Outcome, expected: tuple[str, int], *, national_only: bool = False) -> None:
    error, code = outcome
    want_error, want_code = expected
    assert code == want_code, f"{where}: national code {code}, documented {want_code}"
    if not national_only:
        assert error == want_error, f"{where}: error {error}, documented {want_error}"


# -- Python API ------------------------------------------------------------------------------------


def _api(case: Case, entry: str, card: CardOS, hook: RegistryJournal, registry: Any, keys: KeySource) -> None:
    if entry == "api.register":
        holder, _ = case.order_mapping()
        extra = {"birth_date": holder["birth_date"]} if case.raw["field"] == "birth_date" else {}
        registry.register_holder(holder["ssn"], holder["name"], **extra)
        return
    transport = InProcessTransport(card, reader="In-process card", protocol="T0")
    session = CardSession(transport, key_source=keys, journal=hook, trust_anchors=anchors())
    if entry == "api.issue":
        holder, facts = case.order_mapping()
        issue_card(session, IssuanceOrder.from_mapping(holder, facts), registry=registry, actor=ACTOR)
        return
    session.connect()
    actions: dict[str, Callable[[], object]] = {
        "api.verify": lambda: flows.verify_pin(session, case.value),
        "api.change": lambda: flows.change_pin(session, _initial_pin(), case.value),
        "api.load": lambda: wallet.load(session, case.fen, now=NOW),
        "api.purchase": lambda: wallet.purchase(session, case.fen, now=NOW),
        "api.write": lambda: flows.write_generic(session, case.value, case.write_data),
        "api.read": lambda: flows.read_generic(session, case.value),
    }
    actions[entry]()


API = params("api.")


@pytest.mark.parametrize(("case_id", "entry"), API, ids=ids(API))
def test_bad_input_through_the_python_api(case_id: str, entry: str, tmp_path: Path) -> None:
    case = cases()[case_id]
    db = tmp_path / "registry.db"
    registry, journal = open_registry(f"sqlite:///{db}")
    try:
        card = _card(case)
        card_before, before = persistent(card), registry_state(db)
        hook = RegistryJournal(journal, terminal="BJ-REL-BAD", operator="op-rel-11")
        with pytest.raises(SscardError) as info:
            _api(case, entry, card, hook, registry, psam_source())
    finally:
        registry.close()
    where = f"{case.id} via {entry}"
    _check(where, (info.value.error_id, info.value.national_code), case.entries[entry])
    assert_nothing_written(where, card, card_before, db, before)


# -- command line ----------------------------------------------------------------------------------

CLI = params("cli.")


@pytest.fixture(scope="module")
def cli_slot(pcsc_stack: PcscStack) -> Iterator[tuple[CardWrapper, str]]:
    """Slot 10 holds a card for the module; each test puts its own card OS in it."""
    reader = pcsc_stack.reader_for_slot(CLI_SLOT)
    holder = CardWrapper(CardOS(demo_card_image(3)))
    with inserted(holder, CLI_SLOT, reader):
        yield holder, reader


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, args, input=stdin, env=env, catch_exceptions=False)


def _cli_error(result: Result) -> Outcome:
    assert result.exit_code not in (0, None), f"exit {result.exit_code}: {result.stdout}"
    body = json.loads(result.stderr.strip().splitlines()[-1])
    return str(body["error"]), int(body["national_code"])


def _holder_file(case: Case, folder: Path) -> Path:
    holder, facts = case.order_mapping()
    path = folder / "holder.toml"
    path.write_bytes(tomli_w.dumps({"holder": holder, "card": facts}).encode())
    return path


@pytest.mark.parametrize(("case_id", "entry"), CLI, ids=ids(CLI))
def test_bad_input_through_the_cli(
    case_id: str,
    entry: str,
    cli_slot: tuple[CardWrapper, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = cases()[case_id]
    wrapper, reader = cli_slot
    db = tmp_path / "registry.db"
    key_file = tmp_path / "keys.toml"
    demo_key_set().save(key_file)
    monkeypatch.delenv("SSCARD_CONFIG", raising=False)
    env = {"SSCARD_DB_URL": f"sqlite:///{db}", "SSCARD_DATA_DIR": str(tmp_path / "data")}
    keys = ["--key-source", "dev_key_file", "--key-file", str(key_file)]
    card = _card(case)
    wrapper.card = card
    open_registry(f"sqlite:///{db}")[0].close()
    card_before, before = persistent(card), registry_state(db)
    base = ["--json", "--reader", reader]
    stdin = None
    if entry == "cli.issue":
        args = [
            *base,
            "issue",
            "--holder",
            str(_holder_file(case, tmp_path)),
            "--db",
            f"sqlite:///{db}",
            *keys,
        ]
    elif entry == "cli.register":
        args = [
            "--json",
            "registry",
            "register",
            str(_holder_file(case, tmp_path)),
            "--card-id",
            DEMO_CARD_ID,
            "--db",
            f"sqlite:///{db}",
        ]
    elif entry == "cli.verify":
        args, stdin = [*base, "pin", "verify", "--pin-stdin", "--journal", "registry"], f"{case.value}\n"
    elif entry == "cli.change":
        args = [*base, "pin", "change", "--pin-stdin", "--journal", "registry", *keys]
        stdin = f"{_initial_pin()}\n{case.value}\n{case.value}\n"
    elif entry == "cli.load":
        args = [*base, "wallet", "load", "--journal", "registry", *keys, "--", case.yuan]
    else:
        assert entry == "cli.write"
        args = [*base, "file", "write", "--journal", "registry", *keys, case.value, case.write_data]
    result = _run(args, env, stdin)
    where = f"{case.id} via {entry}"
    _check(where, _cli_error(result), case.entries[entry])
    assert_nothing_written(where, card, card_before, db, before)


# -- native service API and national interface ------------------------------------------------------

SERVICE = params("service.") + params("national.")
CARD_READER = "In-process reliability reader"
PSAM_READER = "In-process reliability PSAM"


class _Backend:
    """The service's card backend over in-process cards (the card is swapped per test)."""

    name = "inprocess"

    def __init__(self) -> None:
        self.card: CardOS = CardOS(demo_card_image(3))
        self.psam = PsamCard(demo_psam_image())

    def readers(self) -> list[ReaderInfo]:
        kind, source = classify(CARD_READER, self.card.atr())
        psam_kind, psam_source_ = classify(PSAM_READER, self.psam.atr())
        return [
            ReaderInfo(CARD_READER, kind, True, self.card.atr(), source),
            ReaderInfo(PSAM_READER, psam_kind, True, self.psam.atr(), psam_source_),
        ]

    def open_transport(self, reader: str) -> Transport:
        return InProcessTransport(self.card, reader=CARD_READER)

    def control_channel(self, transport: Transport) -> None:
        return None

    def open_psam(self, pattern: str) -> KeySource:
        return PsamKeySource(InProcessTransport(self.psam, reader=PSAM_READER))

    def start_watch(self, callback: Callable[[ReaderEvent], None]) -> None:
        return None

    def stop_watch(self) -> None:
        return None


class _Service:
    def __init__(
        self, client: TestClient, backend: _Backend, pins: ScriptedPinEntry, journal: MemoryJournal, db: Path
    ) -> None:
        self.client, self.backend, self.pins, self.journal, self.db = client, backend, pins, journal, db


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Service]:
    tmp = tmp_path_factory.mktemp("bad-input-service")
    db = tmp / "registry.db"
    anchor = tmp / "ca.pem"
    anchor.write_bytes(anchors()[0].to_pem())
    config = config_from_mapping(
        {
            "service": {"token_file": str(tmp / "token"), "card_wait_seconds": 0.0, "origins": [ORIGIN]},
            "readers": {"card": "reliability reader", "psam": "reliability PSAM"},
            "key_source": {"kind": "psam"},
            "terminal": {"zdbm": "T-REL-11", "trust_anchors": [str(anchor)]},
            "pin": {"entry": "page", "attempts_per_window": 1000, "failure_delay_seconds": 0.0},
        },
        source="<reliability>",
    )
    backend, pins, journal = _Backend(), ScriptedPinEntry(), MemoryJournal()
    with _env("SSCARD_DB_URL", f"sqlite:///{db}"):
        open_registry(f"sqlite:///{db}")[0].close()
        app = create_app(
            config,
            backend=backend,
            pin_provider=pins,
            token=AccessToken(TOKEN, tmp / "token"),
            journal=journal,
        )
        with TestClient(app, base_url=BASE, client=("127.0.0.1", 40411)) as client:
            yield _Service(client, backend, pins, journal, db)


def _http(svc: _Service, path: str, body: dict[str, Any]) -> Outcome:
    answer = svc.client.post(f"/api/v1{path}", json=body, headers=AUTH)
    assert answer.status_code >= 400, f"{path}: {answer.status_code}"
    payload = answer.json()
    return str(payload["error"]), int(payload["national_code"])


def _national(svc: _Service, function: str, **args: Any) -> Outcome:
    with svc.client.websocket_connect(NATIONAL_WS, headers={"Origin": ORIGIN}) as ws:
        ws.send_json({"function": function, "iType": 3, **args})
        answer = ws.receive_json()
    assert answer["success"] != 0 and answer["message"], answer
    return None, int(answer["success"])


def _card_info(card: CardOS) -> str:
    session = CardSession(InProcessTransport(card, reader="probe", protocol="T0"))
    info = session.connect()
    session.close()
    return f"{info.card_id_hex}|{info.card_number}|"


@pytest.mark.parametrize(("case_id", "entry"), SERVICE, ids=ids(SERVICE))
def test_bad_input_through_the_service(case_id: str, entry: str, service: _Service) -> None:
    case = cases()[case_id]
    card = _card(case)
    service.backend.card = card
    card_before, before = persistent(card), registry_state(service.db)
    known = len(service.journal.entries)
    service.pins.clear()
    if entry == "service.issue":
        holder, facts = case.order_mapping()
        outcome = _http(service, "/issuance/issue", {"holder": holder, "card": facts})
    elif entry == "service.verify":
        outcome = _http(service, "/pin/verify", {"pin": case.value})
    elif entry == "service.load":
        outcome = _http(service, "/wallet/load", {"amount": case.yuan})
    elif entry == "service.write":
        data = [v for v in case.write_data.split("|") if v]
        outcome = _http(service, "/card/write", {"address": case.value, "data": data})
    elif entry == "national.verify":
        service.pins.push(case.value)
        outcome = _national(service, "iVerifyPIN")
    elif entry == "national.debit":
        outcome = _national(service, "iDoDebit", pCardInfo="", pPayInfo=f"{case.fen}|")
    elif entry == "national.write":
        outcome = _national(
            service,
            "iWriteCard",
            pCardInfo=_card_info(card),
            pFileAddr=case.value,
            pWriteData=case.write_data,
        )
    else:
        assert entry == "national.read"
        outcome = _national(
            service, "iReadCard", iAuthType=1, pCardInfo=_card_info(card), pFileAddr=case.value
        )
    service.pins.clear()
    where = f"{case.id} via {entry}"
    _check(where, outcome, case.entries[entry], national_only=entry.startswith("national."))
    assert_nothing_written(where, card, card_before, service.db, before)
    assert not [
        e for e in service.journal.entries[known:] if e.result == "ok" and e.operation != "card.present"
    ]


def test_the_table_covers_every_kind_of_bad_input() -> None:
    kinds = {c.kind for c in cases().values()}
    assert kinds == {"holder", "pin", "amount", "address"}
    channels = {e.split(".")[0] for c in cases().values() for e in c.entries}
    assert channels == {"api", "cli", "service", "national"}
    assert sum(len(c.entries) for c in cases().values()) == len(API) + len(CLI) + len(SERVICE)
