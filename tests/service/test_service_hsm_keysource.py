"""The service's key source ``hsm``: a back-end security module behind the
program of ``key_source.hsm_command`` (here the software module,
``python -m terminal.keysource.hsm_server KEYS.toml``), spoken to in the
national step protocol over pipes, as ``sscard --key-source hsm`` does."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from service_cards import INITIAL_PIN, OTHER_PIN, SSN, card_os
from service_harness import Insert, MakeService

from card_model.demo import demo_key_set
from terminal.keysource.hsm import HsmKeySource
from terminal.keysource.process_hsm import ProcessHsm
from terminal.service.config import config_from_mapping
from terminal.service.errors import ServiceConfigError


def _module_command(tmp_path: Path) -> str:
    keys = tmp_path / "hsm-keys.toml"
    demo_key_set().save(keys)
    return shlex.join([sys.executable, "-m", "terminal.keysource.hsm_server", str(keys)])


def test_holder_and_pin_reset_through_the_module_program(
    make_service: MakeService, insert: Insert, tmp_path: Path
) -> None:
    service = make_service(key_source={"kind": "hsm", "hsm_command": _module_command(tmp_path)})
    health = service.get("/health").json()
    assert health["key_source"]["kind"] == "hsm" and health["key_source"]["present"] is True
    source = service.app.ctx.keys.get()
    assert isinstance(source, HsmKeySource) and isinstance(source.module, ProcessHsm)
    module = source.module
    with insert(card_os(3)):
        holder = service.post("/card/holder").json()
        assert holder["ssn"] == SSN and holder["name"] == "张三"
        assert service.post("/pin/verify", {"pin": INITIAL_PIN}).json()["ok"] is True
        reset = service.post("/pin/reset", {"new_pin": OTHER_PIN}).json()
        assert reset["operation"] == "reset" and reset["state"] == "ok"
        assert service.post("/pin/verify", {"pin": OTHER_PIN}).json()["ok"] is True
        back = service.post("/pin/reset").json()  # to the initial PIN: RK (SSN) and PRK in steps
        assert back["state"] == "initial"
        assert service.post("/pin/verify", {"pin": INITIAL_PIN}).json()["ok"] is True
    # Every key operation went to the program: external authentication (RK), PIN reload MACs.
    assert module.requests >= 4
    assert service.app.ctx.keys.get() is source  # started once and kept


def test_a_module_program_that_ended_is_started_again(
    make_service: MakeService, insert: Insert, tmp_path: Path
) -> None:
    service = make_service(key_source={"kind": "hsm", "hsm_command": _module_command(tmp_path)})
    first = service.app.ctx.keys.get()
    assert isinstance(first, HsmKeySource) and isinstance(first.module, ProcessHsm)
    first.module.close()  # the program ends (a crash, an operator restart)
    with insert(card_os(3)):
        body = service.post("/card/holder").json()
        assert body["error"] == "hsm_unavailable" and body["national_code"] == "-1020"
        assert service.post("/card/holder").json()["ssn"] == SSN
    assert service.app.ctx.keys.get() is not first


def test_a_program_that_cannot_start_is_reported(
    make_service: MakeService, insert: Insert, tmp_path: Path
) -> None:
    service = make_service(key_source={"kind": "hsm", "hsm_command": str(tmp_path / "no-such-module")})
    health = service.get("/health").json()["key_source"]
    assert health["kind"] == "hsm" and health["present"] is False and health["error"] == "hsm_unavailable"
    with insert(card_os(3)):
        assert service.post("/card/basic").json()["card_number"] == "X00000019"  # no key needed


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "hsm"}, "key_source.hsm_command: required"),
        ({"kind": "hsm", "hsm_command": "  "}, "key_source.hsm_command: required"),
        ({"kind": "hsm", "hsm_command": "'unbalanced"}, "key_source.hsm_command: unbalanced"),
        ({"kind": "hsm", "hsm_command": 7}, "key_source.hsm_command: text expected"),
    ],
)
def test_hsm_command_configuration_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceConfigError, match=message):
        config_from_mapping({"key_source": table})
