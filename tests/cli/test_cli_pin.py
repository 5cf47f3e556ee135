"""`sscard pin status|verify|change|reset|unblock`: prompts, --pin-stdin, every
PIN error path and its exit code; PINs never in the output."""

from __future__ import annotations

from collections.abc import Callable

from cli_helpers import INITIAL_PIN, NEW_PIN, WRONG_PIN, assert_no_pin, json_err, json_out, run

from card_model.demo import demo_card_image
from emulator.card_os import CardOS

PIN_STATUS_FIELDS = {"state", "retries_left", "max_tries"}
PIN_RESULT_FIELDS = {"operation", "ok", "state", "retries_left", "max_tries"}
ALL_PINS = (INITIAL_PIN, NEW_PIN, WRONG_PIN, "135246")


def _lock(card: str) -> None:
    for _ in range(3):
        assert run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{WRONG_PIN}\n").exit_code == 6


def test_status_json_fields(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "status"])
    assert result.exit_code == 0, result.stderr
    status = json_out(result)
    assert set(status) == PIN_STATUS_FIELDS
    assert status == {"state": "initial", "retries_left": 3, "max_tries": 3}


def test_status_text(card: str) -> None:
    result = run(["--reader", card, "pin", "status"])
    assert result.exit_code == 0
    assert "初始密码 initial" in result.stdout
    assert "剩余次数 retries left" in result.stdout


def test_verify_with_a_hidden_prompt(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "verify"], input=f"{INITIAL_PIN}\n")
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert set(payload) == PIN_RESULT_FIELDS
    assert payload["operation"] == "verify" and payload["ok"] is True
    assert "请输入服务密码" in result.stderr
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_hidden_prompt_without_an_answer_is_cancelled_entry(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "verify"], input="")
    assert result.exit_code == 2 and result.stdout == ""
    body = json_err(result)
    assert body["error"] == "pin_entry_cancelled" and body["national_code"] == "-31"
    assert json_out(run(["--json", "--reader", card, "pin", "status"]))["retries_left"] == 3


def test_verify_from_stdin(card: str) -> None:
    result = run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{INITIAL_PIN}\n")
    assert result.exit_code == 0, result.stderr
    assert "校验服务密码 PIN verified" in result.stdout
    assert "请输入" not in result.stderr
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_initial_pin_may_be_typed_with_its_x(put_card: Callable[[CardOS], str]) -> None:
    reader = put_card(CardOS(demo_card_image(3, holder="x_long_name")))  # SSN ends in X
    for typed in ("12101X", "12101x", "121010"):
        result = run(["--reader", reader, "pin", "verify", "--pin-stdin"], input=f"{typed}\n")
        assert result.exit_code == 0, result.stderr


def test_wrong_pin_counts_down_then_blocks(card: str) -> None:
    outputs = []
    for left in (2, 1, 0):
        result = run(["--json", "--reader", card, "pin", "verify", "--pin-stdin"], input=f"{WRONG_PIN}\n")
        outputs += [result.stdout, result.stderr]
        assert result.exit_code == 6
        error = json_err(result)
        assert error["error"] == "pin_wrong"
        assert error["national_code"] == "-51"
        assert error["retries_left"] == left
        assert error["sw"] == f"63C{left}"
        assert result.stdout == ""
    blocked = run(["--json", "--reader", card, "pin", "verify", "--pin-stdin"], input=f"{INITIAL_PIN}\n")
    assert blocked.exit_code == 7
    assert json_err(blocked)["error"] == "pin_blocked"
    assert json_err(blocked)["national_code"] == "-52"
    status = json_out(run(["--json", "--reader", card, "pin", "status"]))
    assert status == {"state": "blocked", "retries_left": 0, "max_tries": 3}
    assert_no_pin([*outputs, blocked.stdout, blocked.stderr], ALL_PINS)


def test_wrong_pin_text_message_has_retries(card: str) -> None:
    result = run(["--reader", card, "pin", "verify"], input=f"{WRONG_PIN}\n")
    assert result.exit_code == 6
    assert "服务密码错误，还可尝试2次（代码 -51，SW 63C2）" in result.stderr
    assert "tries left: 2" in result.stderr
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_verify_for_a_transaction_refuses_the_initial_pin(card: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "verify", "--for-transaction", "--pin-stdin"],
        input=f"{INITIAL_PIN}\n",
    )
    assert result.exit_code == 10
    error = json_err(result)
    assert error["error"] == "initial_pin_use"
    assert error["national_code"] == "-35"


def test_pin_with_letters_is_a_usage_error(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "verify", "--pin-stdin"], input="12ab56\n")
    assert result.exit_code == 2
    assert json_err(result)["national_code"] == "-41"
    assert "12ab56" not in result.stderr


def test_pin_of_the_wrong_length(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "verify", "--pin-stdin"], input="1234\n")
    assert result.exit_code == 2
    assert json_err(result)["error"] == "pin_length"
    assert json_err(result)["national_code"] == "-33"


def test_missing_stdin_line_is_a_usage_error(card: str) -> None:
    result = run(["--json", "--reader", card, "pin", "verify", "--pin-stdin"], input="")
    assert result.exit_code == 2
    assert json_err(result)["error"] == "pin_entry_cancelled"


def test_change_asks_the_new_pin_twice(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "change"], input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n"
    )
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["operation"] == "change" and payload["state"] == "ok"
    assert "请输入原服务密码" in result.stderr
    assert "请再次输入新服务密码" in result.stderr
    verify = run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{NEW_PIN}\n")
    assert verify.exit_code == 0
    assert_no_pin([result.stdout, result.stderr, verify.stdout, verify.stderr], ALL_PINS)


def test_change_from_stdin(card: str, psam: str) -> None:
    result = run(
        ["--reader", card, "pin", "change", "--pin-stdin"], input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n"
    )
    assert result.exit_code == 0, result.stderr
    assert "修改服务密码 PIN changed" in result.stdout
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_change_with_two_different_new_pins(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "change", "--pin-stdin"],
        input=f"{INITIAL_PIN}\n{NEW_PIN}\n135246\n",
    )
    assert result.exit_code == 2
    assert json_err(result)["error"] == "pin_mismatch"
    assert json_err(result)["national_code"] == "-34"
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_change_back_to_the_initial_pin_is_refused(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "change", "--pin-stdin"],
        input=f"{INITIAL_PIN}\n{INITIAL_PIN}\n{INITIAL_PIN}\n",
    )
    assert result.exit_code == 10
    assert json_err(result)["error"] == "initial_pin_reuse"
    assert json_err(result)["national_code"] == "-36"


def test_change_with_a_wrong_old_pin(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "change", "--pin-stdin"],
        input=f"{WRONG_PIN}\n{NEW_PIN}\n{NEW_PIN}\n",
    )
    assert result.exit_code == 6
    assert json_err(result)["retries_left"] == 2


def test_unblock_restores_the_tries(card: str, psam: str) -> None:
    _lock(card)
    result = run(["--json", "--reader", card, "pin", "unblock"])
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["operation"] == "unblock"
    assert payload["retries_left"] == 3
    assert run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{INITIAL_PIN}\n").exit_code == 0


def test_unblock_needs_the_key_source(card: str, spare_reader: str) -> None:
    _lock(card)
    result = run(["--json", "--reader", card, "pin", "unblock", "--psam-reader", spare_reader])
    assert result.exit_code == 9
    assert json_err(result)["error"] == "no_psam"


def test_reset_to_the_initial_pin(card: str, psam: str) -> None:
    run(["--reader", card, "pin", "change", "--pin-stdin"], input=f"{INITIAL_PIN}\n{NEW_PIN}\n{NEW_PIN}\n")
    result = run(["--json", "--reader", card, "pin", "reset"])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["state"] == "initial"
    assert run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{INITIAL_PIN}\n").exit_code == 0


def test_reset_to_a_chosen_pin(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "reset", "--chosen", "--pin-stdin"],
        input=f"{NEW_PIN}\n{NEW_PIN}\n",
    )
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["state"] == "ok"
    assert run(["--reader", card, "pin", "verify", "--pin-stdin"], input=f"{NEW_PIN}\n").exit_code == 0
    assert_no_pin([result.stdout, result.stderr], ALL_PINS)


def test_reset_to_the_initial_pin_as_a_chosen_one_is_refused(card: str, psam: str) -> None:
    result = run(
        ["--json", "--reader", card, "pin", "reset", "--chosen", "--pin-stdin"],
        input=f"{INITIAL_PIN}\n{INITIAL_PIN}\n",
    )
    assert result.exit_code == 10
    assert json_err(result)["national_code"] == "-36"


def test_pin_commands_take_no_pin_argument(card: str) -> None:
    result = run(["--reader", card, "pin", "verify", INITIAL_PIN])
    assert result.exit_code == 2
    assert "Got unexpected extra argument" in result.stderr


def test_pin_group_help_lists_the_commands() -> None:
    result = run(["pin", "--help"])
    assert result.exit_code == 0
    for name in ("status", "verify", "change", "reset", "unblock"):
        assert name in result.stdout
