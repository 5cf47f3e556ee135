"""``sscard emulator`` commands: in process (click CliRunner) and as the
real ``python -m emulator`` process talking over the control socket."""

from __future__ import annotations

import json
import os
import signal
import tomllib
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from emulator_pcsc_helpers import (
    GEN3_CONTACT_ATR,
    PSAM_ATR,
    READ_EF05_TAG07,
    WRONG_VERIFY,
    connected,
    emulator_command,
    no_answer,
    start_host,
    stop_host,
    wait_reader,
)

from apdu.inprocess import InProcessTransport
from card_model.demo import demo_card_image, demo_key_set
from card_model.lifecycle import LifeCycle
from card_model.store import CardStore
from emulator.card_os import CardOS
from emulator.cli import emulator_group, main
from emulator.control import list_hosts, request
from emulator.errors import RemoteError
from emulator.runner import CardHost
from emulator.stack import PcscStack
from terminal import flows
from terminal.keysource import DevKeyFileKeySource, DevKeysWarning
from terminal.session import CardSession

VECTORS = Path(__file__).parent / "vectors"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(emulator_group, list(args), catch_exceptions=False)


def _error(result: Result) -> dict[str, object]:
    body: dict[str, object] = json.loads(result.stderr)
    assert set(body) >= {"error", "message", "national_code"}
    assert isinstance(body["national_code"], str) and int(body["national_code"]) < 0  # codes as strings
    assert body["exit_code"] == result.exit_code
    return body


# -- create / show ---------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "generation"), [("gen3", 3), ("gen2", 2), ("gen1", 1)])
def test_create_every_profile_with_its_demo_holder(tmp_path: Path, profile: str, generation: int) -> None:
    out = tmp_path / f"{profile}.json"
    result = _invoke("--json", "create", "--profile", profile, "--out", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["kind"] == "card" and payload["profile"] == profile
    assert payload["life_cycle"] == "personalised"
    image = CardStore(out).load_card()
    assert image.profile == profile and image.life_cycle is LifeCycle.PERSONALISED
    assert out.stat().st_mode & 0o777 == 0o600


def test_create_from_a_holder_file(tmp_path: Path) -> None:
    out = tmp_path / "holder.json"
    result = _invoke(
        "create", "--profile", "gen2", "--holder", str(VECTORS / "holder_gen2.toml"), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "已创建卡片映像" in result.stdout
    image = CardStore(out).load_card()
    assert image.record_files[0xEF05].records[0x07] == b"B00000027"
    assert image.pin.value == "152006"


@pytest.mark.parametrize("profile", ["gen3", "gen2", "gen1"])
def test_contract_holder_file_comes_back_under_the_same_json_names(tmp_path: Path, profile: str) -> None:
    """interfaces.md's holder TOML -> `create --profile P --holder` -> the card read
    by the terminal: every [holder] / [card] value under the JSON field of its name."""
    source = VECTORS / "holder_interfaces.toml"
    out = tmp_path / "card.json"
    created = _invoke("--json", "create", "--profile", profile, "--holder", str(source), "--out", str(out))
    assert created.exit_code == 0, created.output
    expected = tomllib.loads(source.read_text("utf-8"))
    session = CardSession(InProcessTransport(CardOS(CardStore(out).load_card())), key_source=_dev_keys())
    with session:
        basic = flows.read_basic(session).to_dict()
        holder = flows.read_holder(session).to_dict()
    assert basic["generation"] == int(profile[-1])
    assert {key: holder[key] for key in expected["holder"]} == expected["holder"]
    card_fields = {key: basic[key] for key in expected["card"] if key != "bank"}
    assert card_fields == {key: value for key, value in expected["card"].items() if key != "bank"}
    assert basic["card_id"].startswith(expected["card"]["region_code"] + "D156000005")


def _dev_keys() -> DevKeyFileKeySource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevKeysWarning)
        return DevKeyFileKeySource(demo_key_set())


def test_create_blank_active_and_psam(tmp_path: Path) -> None:
    assert _invoke("create", "--blank", "--out", str(tmp_path / "blank.json")).exit_code == 0
    blank = CardStore(tmp_path / "blank.json").load_card()
    assert blank.life_cycle is LifeCycle.BLANK and blank.sm2_sign_key is None
    assert _invoke("create", "--life-cycle", "active", "--out", str(tmp_path / "a.json")).exit_code == 0
    assert CardStore(tmp_path / "a.json").load_card().life_cycle is LifeCycle.ACTIVE
    result = _invoke("--json", "create", "--psam", "--out", str(tmp_path / "psam.json"))
    assert json.loads(result.stdout) == {
        "kind": "psam",
        "path": str(tmp_path / "psam.json"),
        "terminal_number": "110102000001",
        "keys": 20,
    }
    assert CardStore(tmp_path / "psam.json").load_psam().terminal_number_text == "110102000001"


def test_create_errors_follow_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    assert _invoke("create", "--out", str(out)).exit_code == 0
    again = _invoke("--json", "create", "--out", str(out))
    assert again.exit_code == 1 and again.stdout == ""
    assert _error(again)["error"] == "image_exists"
    assert _invoke("create", "--out", str(out), "--force").exit_code == 0
    bad = _invoke(
        "--json", "create", "--holder", str(VECTORS / "holder_bad_ssn.toml"), "--out", str(out) + "2"
    )
    assert bad.exit_code == 2
    assert _error(bad)["national_code"] == "-23"
    assert not Path(str(out) + "2").exists()
    mixed = _invoke("create", "--psam", "--blank", "--out", str(tmp_path / "x.json"))
    assert mixed.exit_code == 2 and "错误" in mixed.stderr
    assert _invoke("create", "--profile", "gen4", "--out", str(out)).exit_code == 2


def test_show_an_image_never_prints_secrets(tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    image = demo_card_image()
    image.pin.tries_left = 1
    image.keys[3].tries_left = 0
    CardStore(out).commit(image)
    as_json = _invoke("--json", "show", str(out))
    summary = json.loads(as_json.stdout)
    assert summary["pin"] == {"state": "initial", "retries_left": 1, "max_tries": 3, "initial": True}
    assert {"kid": "03", "role": "RK", "locked": True}.items() <= summary["keys"][2].items()
    assert summary["life_cycle"] == "personalised"
    assert {"EF05", "EF06", "EF07", "EF0D", "EF0E"} <= {f["name"] for f in summary["files"]}
    text = _invoke("show", str(out)).stdout
    assert "生命周期" in text and "已锁定" in text
    for output in (as_json.stdout, text):
        assert image.pin.value not in output
        assert "110102197305211008" not in output
        for key in image.keys.values():
            assert key.value.hex().upper() not in output and key.value.hex() not in output
    psam = tmp_path / "psam.json"
    assert _invoke("create", "--psam", "--out", str(psam)).exit_code == 0
    assert json.loads(_invoke("--json", "show", str(psam)).stdout)["kind"] == "psam"
    assert _invoke("show").exit_code == 2


# -- the control socket, in process ---------------------------------------------------------------


def test_control_commands_against_an_in_process_host(
    pcsc_stack: PcscStack, host: CardHost, tmp_path: Path
) -> None:
    control = str(tmp_path / "control")
    socket_path = host.serve_control(control)
    assert socket_path.stat().st_mode & 0o777 == 0o600
    host.add(0)
    host.add(1, psam=True)
    reader = pcsc_stack.reader_for_slot(0)
    wait_reader(reader, GEN3_CONTACT_ATR)
    wait_reader(pcsc_stack.reader_for_slot(1), PSAM_ATR)

    removed = _invoke("--json", "remove", "--slot", "0", "--control-dir", control)
    assert removed.exit_code == 0 and json.loads(removed.stdout)["inserted"] is False
    wait_reader(reader, None)
    assert _invoke("insert", "--slot", "0", "--control-dir", control).stdout.startswith("槽位 0")
    transport = connected(reader, GEN3_CONTACT_ATR)

    armed = _invoke("--json", "fault", "tear_after", "--slot", "0", "--ins", "20", "--control-dir", control)
    assert json.loads(armed.stdout)["armed"][0]["kind"] == "tear_after"
    no_answer(transport, WRONG_VERIFY)
    wait_reader(reader, None)
    shown = json.loads(_invoke("--json", "show", "--slot", "0", "--control-dir", control).stdout)
    assert shown["pin"]["retries_left"] == 2
    assert shown["slot"]["fired"] == [{"kind": "tear_after", "apdu_index": 1, "ins": "20"}]
    assert shown["slot"]["inserted"] is False

    assert _invoke("insert", "--slot", "0", "--control-dir", control).exit_code == 0
    transport = connected(reader, GEN3_CONTACT_ATR)
    from_file = _invoke(
        "fault", "--slot", "0", "--file", str(VECTORS / "faults.toml"), "--control-dir", control
    )
    assert from_file.exit_code == 0 and from_file.stdout.count("已设置一次性故障") == 2
    assert transport.transmit(READ_EF05_TAG07) == b"\x6a\x82"
    assert _invoke("fault", "--slot", "0", "--clear", "--control-dir", control).exit_code == 0
    assert transport.transmit(WRONG_VERIFY) == b"\x63\xc1"
    transport.disconnect()

    status = json.loads(_invoke("--json", "status", "--control-dir", control).stdout)
    assert [entry["slot"] for entry in status["hosts"][0]["slots"]] == [0, 1]
    psam = json.loads(_invoke("--json", "show", "--slot", "1", "--control-dir", control).stdout)
    assert psam["kind"] == "psam" and psam["slot"]["atr"] == PSAM_ATR.hex().upper()


def test_control_errors(host: CardHost, tmp_path: Path) -> None:
    control = str(tmp_path / "control")
    socket_path = host.serve_control(control)
    host.add(3, insert=False)
    nobody = _invoke("--json", "insert", "--slot", "2", "--control-dir", control)
    assert nobody.exit_code == 3 and nobody.stdout == ""
    assert _error(nobody)["error"] == "emulator_not_running"
    bad = _invoke("--json", "fault", "mute", "--slot", "3", "--hold", "99", "--control-dir", control)
    assert bad.exit_code == 2 and _error(bad)["error"] == "fault_invalid"
    neither = _invoke("fault", "--slot", "3", "--control-dir", control)
    assert neither.exit_code == 2
    with pytest.raises(RemoteError) as unknown:
        request(socket_path, {"op": "show", "slot": 2})
    assert unknown.value.error_id == "unknown_slot" and unknown.value.exit_code == 2
    with pytest.raises(RemoteError) as garbage:
        request(socket_path, {"op": "explode"})
    assert garbage.value.error_id == "control_error"
    assert request(socket_path, {"op": "ping"})["pid"] == os.getpid()


def test_no_host_at_all_is_exit_code_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--json", "remove", "--slot", "1", "--control-dir", str(tmp_path)])
    assert code == 3
    assert json.loads(capsys.readouterr().err)["error"] == "emulator_not_running"
    assert main(["show", "--slot", "1", "--control-dir", str(tmp_path)]) == 3


# -- the real process ---------------------------------------------------------------------------------


def test_run_process_with_card_and_psam(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    control = str(tmp_path / "control")
    faults = str(VECTORS / "faults.toml")
    process, ready = start_host(
        "--slot",
        "2",
        "--image",
        str(image),
        "--psam-slot",
        "3",
        "--control-dir",
        control,
        "--fault-file",
        faults,
    )
    try:
        assert [entry["kind"] for entry in ready["slots"]] == ["card", "psam"]
        assert [fault["kind"] for fault in ready["slots"][0]["armed"]] == ["wrong", "tear_after"]
        wait_reader(pcsc_stack.reader_for_slot(3), PSAM_ATR)
        transport = connected(pcsc_stack.reader_for_slot(2), GEN3_CONTACT_ATR)
        assert transport.transmit(READ_EF05_TAG07) == b"\x6a\x82"
        assert transport.transmit(READ_EF05_TAG07)[-2:] == b"\x90\x00"
        assert emulator_command("fault", "--slot", "2", "--clear", "--control-dir", control).returncode == 0
        transport.disconnect()

        busy = emulator_command("--json", "run", "--no-pcscd", "--slot", "3", "--control-dir", control)
        assert busy.returncode == 1 and json.loads(busy.stderr)["error"] == "slot_in_use"

        pulled = emulator_command("remove", "--slot", "2", "--control-dir", control)
        assert pulled.returncode == 0 and "已拔卡" in pulled.stdout
        wait_reader(pcsc_stack.reader_for_slot(2), None)
        assert emulator_command("insert", "--slot", "2", "--control-dir", control).returncode == 0
        wait_reader(pcsc_stack.reader_for_slot(2), GEN3_CONTACT_ATR)
        status = json.loads(_invoke("--json", "status", "--control-dir", control).stdout)
        assert status["hosts"][0]["pid"] == process.pid
        shown = _invoke("show", "--slot", "2", "--control-dir", control)
        assert "gen3" in shown.stdout and "211008" not in shown.stdout
    finally:
        assert stop_host(process) == 0
    wait_reader(pcsc_stack.reader_for_slot(2), None)
    wait_reader(pcsc_stack.reader_for_slot(3), None)
    assert list(Path(control).iterdir()) == []


def test_killed_host_leaves_a_socket_that_is_cleaned_up(pcsc_stack: PcscStack, tmp_path: Path) -> None:
    control = tmp_path / "control"
    process, ready = start_host("--slot", "1", "--contactless", "--control-dir", str(control))
    assert ready["slots"][0]["interface"] == "contactless"
    wait_reader(pcsc_stack.reader_for_slot(1), bytes.fromhex("3B8A8001424A5353433300039000E0"))
    assert stop_host(process, signal.SIGKILL) == -signal.SIGKILL
    wait_reader(pcsc_stack.reader_for_slot(1), None)
    assert Path(ready["control_socket"]).exists()
    assert list_hosts(control) == []
    assert not Path(ready["control_socket"]).exists()
    gone = emulator_command("--json", "insert", "--slot", "1", "--control-dir", str(control))
    assert gone.returncode == 3 and json.loads(gone.stderr)["error"] == "emulator_not_running"


def test_run_refuses_more_images_than_slots(tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    CardStore(image).commit(demo_card_image())
    result = _invoke("run", "--no-pcscd", "--image", str(image), "--image", str(image))
    assert result.exit_code == 2 and "--image" in result.stderr
