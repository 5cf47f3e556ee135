"""`sscard activate / block / unblock / status / authenticate / file`, with the
card-refused and key-source exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cli_helpers import json_err, json_out, run

from card_model.demo import demo_key_set
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS

LIFE_CYCLE_FIELDS = {"operation", "life_cycle_before", "life_cycle", "life_cycle_text"}


def test_status_with_key_counters(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "status"])
    assert result.exit_code == 0, result.stderr
    status = json_out(result)
    assert set(status) == {"generation", "profile_version", "life_cycle", "life_cycle_text", "pin", "keys"}
    assert status["generation"] == 3
    assert status["life_cycle"] == "personalised"
    assert status["pin"] == {"state": "initial", "retries_left": 3, "max_tries": 3}
    roles = {key["role"]: key for key in status["keys"]}
    assert roles["RK"]["tries_left"] == roles["RK"]["max_tries"]


def test_status_without_a_key_source_has_no_counters(card: str, spare_reader: str) -> None:
    result = run(["--json", "--reader", card, "status", "--psam-reader", spare_reader])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["keys"] is None


def test_status_no_keys_flag(card: str, psam: str) -> None:
    result = run(["--reader", card, "status", "--no-keys"])
    assert result.exit_code == 0, result.stderr
    assert "生命周期 life cycle" in result.stdout
    assert "已个人化，未启用 personalised, not activated" in result.stdout


def test_status_keys_flag_needs_a_key_source(card: str) -> None:
    result = run(["--json", "--reader", card, "status", "--keys", "--key-source", "none"])
    assert result.exit_code == 9
    assert json_err(result)["error"] == "no_psam"


def test_activate_then_activate_again_is_refused_by_the_card(card: str, psam: str) -> None:
    first = run(["--json", "--reader", card, "activate"])
    assert first.exit_code == 0, first.stderr
    payload = json_out(first)
    assert set(payload) == LIFE_CYCLE_FIELDS
    assert payload["life_cycle_before"] == "personalised"
    assert payload["life_cycle"] == "active"
    again = run(["--json", "--reader", card, "activate"])
    assert again.exit_code == 8
    error = json_err(again)
    assert error["sw"] == "6985"
    assert error["national_code"] == "-27013"


def test_activate_without_a_key_source(card: str, spare_reader: str) -> None:
    result = run(["--reader", card, "activate", "--psam-reader", spare_reader])
    assert result.exit_code == 9
    assert "-2201" in result.stderr


def test_block_and_unblock(card: str, psam: str) -> None:
    blocked = run(["--json", "--reader", card, "block"])
    assert blocked.exit_code == 0, blocked.stderr
    assert json_out(blocked)["life_cycle"] == "temporarily_blocked"
    refused = run(["--json", "--reader", card, "read", "holder"])
    assert refused.exit_code == 8
    released = run(["--reader", card, "unblock"])
    assert released.exit_code == 0, released.stderr
    assert "解除锁定 unblocked" in released.stdout
    assert json_out(run(["--json", "--reader", card, "status", "--no-keys"]))["life_cycle"] == "personalised"


def test_permanent_block_asks_first(card: str, psam: str) -> None:
    declined = run(["--reader", card, "block", "--permanent"], input="n\n")
    assert declined.exit_code == 1
    assert "永久锁定后不能解除" in declined.stderr
    as_json = run(["--json", "--reader", card, "block", "--permanent"], input="n\n")
    assert as_json.exit_code == 1 and as_json.stdout == ""
    body = json_err(as_json)
    assert body["error"] == "operation_cancelled" and body["national_code"] == "-31"
    assert body["message"] == "操作已取消"
    assert json_out(run(["--json", "--reader", card, "status", "--no-keys"]))["life_cycle"] == "personalised"


def test_permanent_block_cannot_be_released(card: str, psam: str) -> None:
    blocked = run(["--json", "--reader", card, "block", "--permanent", "--yes"])
    assert blocked.exit_code == 0, blocked.stderr
    assert json_out(blocked)["life_cycle"] == "permanently_blocked"
    release = run(["--json", "--reader", card, "unblock"])
    assert release.exit_code == 8
    assert json_err(release)["sw"] == "9303"
    assert json_err(release)["error"] == "application_permanently_blocked"


def test_terminated_card_is_a_wrong_card(put_card: Callable[[CardOS], str]) -> None:
    from cli_helpers import card_os

    reader = put_card(card_os(LifeCycle.CARD_BLOCKED))
    result = run(["--json", "--reader", reader, "status"])
    assert result.exit_code == 5
    assert json_err(result)["sw"] == "6A81"


def test_authenticate_gen3(card: str, psam: str, anchor_file: Path) -> None:
    result = run(["--json", "--reader", card, "authenticate", "--trust-anchor", str(anchor_file)])
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["genuine"] is True
    assert payload["symmetric"] is True and payload["sm2"] is True
    assert "sscard demo root CA" in payload["anchor_subject"]


def test_authenticate_with_anchors_from_the_configuration(
    card: str, psam: str, anchor_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "sscard.toml"
    config.write_text(f'[cli]\ntrust_anchors = ["{anchor_file}"]\n', encoding="utf-8")
    result = run(["--reader", card, "--config", str(config), "authenticate"])
    assert result.exit_code == 0, result.stderr
    assert "SM2签名 SM2 signature" in result.stdout


def test_authenticate_without_anchors_is_a_usage_error(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "authenticate"])
    assert result.exit_code == 2
    assert json_err(result)["national_code"] == "-14"


def test_authenticate_with_a_bad_anchor_file(card: str, psam: str, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate", encoding="utf-8")
    result = run(["--json", "--reader", card, "authenticate", "--trust-anchor", str(bogus)])
    assert result.exit_code == 2
    assert json_err(result)["error"] == "invalid_parameter"


def test_card_with_other_keys_is_not_genuine(card: str, anchor_file: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-keys.toml"
    IssuerKeySet({role: bytes(16) for role in demo_key_set().masters}).save(wrong)
    result = run(
        [
            "--json",
            "--reader",
            card,
            "authenticate",
            "--key-file",
            str(wrong),
            "--trust-anchor",
            str(anchor_file),
        ]
    )
    assert result.exit_code == 9
    error = json_err(result)
    assert error["error"] == "card_not_genuine"
    assert error["national_code"] == "-21"


def test_file_read_by_national_address(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "file", "read", "3F00EF06|08|09|$"])
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["file"] == "EF06"
    assert [record["tag"] for record in payload["records"]] == ["08", "09"]
    assert payload["national"] == "110102197305211008|张三|"


def test_file_write_then_read(card: str, psam: str) -> None:
    written = run(["--json", "--reader", card, "file", "write", "3F00EF07|21|23|$", "13912345678|100101|"])
    assert written.exit_code == 0, written.stderr
    assert json_out(written) == {"file": "EF07", "tags": ["21", "23"]}
    read = run(["--reader", card, "file", "read", "3F00EF07|21|23|$"])
    assert read.exit_code == 0, read.stderr
    assert "13912345678|100101|" in read.stdout


def test_file_read_of_another_card_is_refused(card: str, psam: str) -> None:
    other = "110102D156000005FFFFFFFFFFFFFFFF|X00000099|"
    result = run(["--json", "--reader", card, "file", "read", "3F00EF06|08|$", "--card-info", other])
    assert result.exit_code == 10
    assert json_err(result)["error"] == "card_data_mismatch"


def test_file_read_with_a_bad_address(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "file", "read", "3F00EF99|08|$"])
    assert result.exit_code == 2
    assert json_err(result)["national_code"] == "-14"
