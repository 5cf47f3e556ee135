"""The security module in another process (ProcessHsm) and the software module
program (hsm_server): the line protocol, its failures, and flows over it."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal_cards import card_os, inprocess_session

from apdu.errors import InvalidInput
from card_model.demo import demo_key_set
from card_model.keys import Algorithm, KeyRole
from terminal import flows
from terminal.errors import HsmUnavailable
from terminal.keysource import HsmKeySource, HsmRequest, SoftwareHsm
from terminal.keysource.hsm_server import main as server_main
from terminal.keysource.hsm_server import serve_lines
from terminal.keysource.process_hsm import ProcessHsm, command_argv

FACTOR = bytes.fromhex("E0CF52641D730D02")
CHALLENGE = bytes(range(8))


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    demo_key_set().save(path)
    return path


@pytest.fixture(scope="module")
def module(key_file: Path) -> Iterator[ProcessHsm]:
    hsm = ProcessHsm([sys.executable, "-m", "terminal.keysource.hsm_server", str(key_file)])
    yield hsm
    hsm.close()


def test_serve_lines_answers_each_request_like_the_software_module() -> None:
    software = SoftwareHsm(demo_key_set())
    request = HsmRequest(Algorithm.SM4, KeyRole.RK, FACTOR, CHALLENGE).to_text()
    source = io.StringIO(f"{request}\n\nnot a request\n")
    sink = io.StringIO()
    assert serve_lines(SoftwareHsm(demo_key_set()), source, sink) == 2
    first, second = sink.getvalue().splitlines()
    assert first == software.process(request) and len(first) == 33  # 16 bytes hex + "|"
    assert second == "-14|"


def test_server_refuses_an_unusable_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert server_main([str(tmp_path / "missing.toml")]) == 9
    assert "-1011" in capsys.readouterr().err


def test_process_module_answers_the_key_source(module: ProcessHsm) -> None:
    source = HsmKeySource(module)
    direct = HsmKeySource(SoftwareHsm(demo_key_set()))
    assert source.external_auth(KeyRole.RK, Algorithm.SM4, FACTOR, CHALLENGE) == direct.external_auth(
        KeyRole.RK, Algorithm.SM4, FACTOR, CHALLENGE
    )
    assert module.process("03|9999|00|00|") == "-24|"  # unknown key address: the module's own code
    with pytest.raises(InvalidInput):
        module.process("03|0003|\n|")
    assert "keys.toml" not in repr(module) and "requests=" in repr(module)


def test_flows_over_the_process_module(module: ProcessHsm) -> None:
    session, _, _ = inprocess_session(card_os(3), key_source=HsmKeySource(module))
    with session:
        before = module.requests
        assert flows.read_holder(session).ssn == "110102197305211008"
        assert flows.reset_pin(session).to_dict()["state"] == "initial"
        assert flows.authenticate_card(session).symmetric
        assert module.requests - before == 4  # RK; RK + PRK (reset to the initial PIN); IAK check


def test_commands_and_failures(tmp_path: Path) -> None:
    assert command_argv("hsm-adapter --port 'a b'") == ["hsm-adapter", "--port", "a b"]
    for bad in ("", "   ", "'unbalanced"):
        with pytest.raises(InvalidInput):
            command_argv(bad)
    with pytest.raises(HsmUnavailable) as missing:
        ProcessHsm(str(tmp_path / "no-such-module"))
    assert missing.value.national_code == -1020 and missing.value.error_id == "hsm_unavailable"

    ended = ProcessHsm([sys.executable, "-c", "pass"])
    with pytest.raises(HsmUnavailable):
        ended.process("03|0003|E0CF52641D730D02|0001020304050607|")
    with pytest.raises(HsmUnavailable):  # stopped for good after a failure
        ended.process("03|0003|E0CF52641D730D02|0001020304050607|")
    ended.close()

    # reads its input but never answers: the wait is bounded, then the module is stopped
    mute = ProcessHsm([sys.executable, "-c", "import sys; sys.stdin.read()"], answer_timeout=0.2)
    with pytest.raises(HsmUnavailable) as silent:
        mute.process("03|0003|E0CF52641D730D02|0001020304050607|")
    assert "no answer" in str(silent.value)
    mute.close()
