"""`--key-source hsm --hsm-command CMD`: a back-end security module in steps,
here the software module as a separate program (terminal.keysource.hsm_server)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from cli_helpers import INITIAL_PIN, NEW_PIN, SSN, assert_no_pin, json_err, json_out, run

from card_model.keys import IssuerKeySet


def _module(key_file: Path) -> str:
    return shlex.join([sys.executable, "-m", "terminal.keysource.hsm_server", str(key_file)])


def test_holder_read_through_the_module_program(card: str, key_file: Path) -> None:
    result = run(
        ["--json", "--reader", card, "read", "--key-source", "hsm", "--hsm-command", _module(key_file)]
    )
    assert result.exit_code == 0, result.stderr
    out = json_out(result)
    assert out["holder"]["ssn"] == SSN and out["basic"]["card_number"] == "X00000019"


def test_pin_flows_in_steps_through_the_module(card: str, key_file: Path) -> None:
    module = ["--hsm-command", _module(key_file)]  # --hsm-command alone means --key-source hsm
    change = run(
        ["--json", "--reader", card, "pin", "change", "--pin-stdin", *module],
        input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n",
    )
    assert change.exit_code == 0, change.stderr  # RK step (initial PIN from EF06), then CHANGE PIN
    assert json_out(change)["state"] == "ok"
    reset = run(["--json", "--reader", card, "pin", "reset", *module])
    assert reset.exit_code == 0, reset.stderr  # 3 steps: RK authentication, then the PRK MAC
    assert json_out(reset)["state"] == "initial"
    assert_no_pin([change.stdout, change.stderr, reset.stdout, reset.stderr], (NEW_PIN,))
    status = run(["--json", "--reader", card, "status", "--keys", *module])
    assert status.exit_code == 0, status.stderr
    assert {key["role"]: key["tries_left"] for key in json_out(status)["keys"]}["RK"] == 5


def test_module_with_other_keys_fails_authentication(card: str, tmp_path: Path) -> None:
    from card_model.demo import demo_key_set

    wrong = tmp_path / "wrong-keys.toml"
    IssuerKeySet({role: bytes(16) for role in demo_key_set().masters}).save(wrong)
    result = run(["--json", "--reader", card, "read", "holder", "--hsm-command", _module(wrong)])
    assert result.exit_code == 9
    assert json_err(result)["error"] == "authentication_failed"


def test_module_that_cannot_serve(card: str, tmp_path: Path) -> None:
    missing = run(
        ["--json", "--reader", card, "read", "holder", "--hsm-command", str(tmp_path / "no-such-module")]
    )
    assert missing.exit_code == 9
    assert json_err(missing)["error"] == "hsm_unavailable"
    assert json_err(missing)["national_code"] == "-1020"
    silent = shlex.join([sys.executable, "-c", "pass"])  # ends without answering
    ended = run(["--json", "--reader", card, "read", "holder", "--hsm-command", silent])
    assert ended.exit_code == 9 and json_err(ended)["error"] == "hsm_unavailable"
    unset = run(["--json", "--reader", card, "read", "holder", "--key-source", "hsm"])
    assert unset.exit_code == 9 and json_err(unset)["error"] == "hsm_unavailable"
    basic = run(["--json", "--reader", card, "read", "basic", "--key-source", "hsm"])
    assert basic.exit_code == 0  # no key needed: the module is never asked


def test_module_from_the_configuration(card: str, key_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "sscard.toml"
    command = _module(key_file).replace("\\", "\\\\").replace('"', '\\"')
    config.write_text(f'[cli]\nkey_source = "hsm"\nhsm_command = "{command}"\n', "utf-8")
    result = run(["--json", "--config", str(config), "--reader", card, "read", "holder"])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["holder"]["name"] == "张三"
