"""`sscard readers` and `sscard apdu HEX...` (raw, traced, redacted)."""

from __future__ import annotations

from cli_helpers import INITIAL_PIN, assert_no_pin, json_err, json_out, run

from apdu.status import describe

SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"


def test_readers_lists_kinds_cards_and_atrs(card: str, psam: str, spare_reader: str) -> None:
    result = run(["--json", "readers"])
    assert result.exit_code == 0, result.stderr
    readers = {r["name"]: r for r in json_out(result)["readers"]}
    for reader in readers.values():
        assert set(reader) == {"name", "kind", "card_present", "atr", "state"}
    assert readers[card]["kind"] == "contact"
    assert readers[card]["card_present"] is True and readers[card]["state"] == "present"
    assert readers[card]["atr"] == "3B6A0000424A53534333000390 00".replace(" ", "")
    assert readers[psam]["kind"] == "psam"
    assert readers[spare_reader] == {
        "name": spare_reader,
        "kind": "unknown",
        "card_present": False,
        "atr": None,
        "state": "empty",
    }


def test_readers_text_and_filter(card: str, psam: str) -> None:
    result = run(["--reader", card, "readers"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("读卡器 reader")
    assert len(lines) == 2
    assert card in lines[1]
    assert "接触 contact" in lines[1]
    assert "有 yes" in lines[1]


def test_readers_filter_matching_nothing(pcsc_stack: object) -> None:
    result = run(["--reader", "no reader is called this", "readers"])
    assert result.exit_code == 0
    assert "未找到读卡器" in result.stdout
    assert json_out(run(["--json", "--reader", "no reader is called this", "readers"])) == {"readers": []}


def test_apdu_select_and_read_basic_records(card: str) -> None:
    result = run(["--json", "--reader", card, "apdu", SELECT_SSSE, "00B2012C00"])
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["reader"] == card
    assert payload["atr"].startswith("3B6A")
    first, second = payload["exchanges"]
    assert first["sw"] == "9000"
    assert first["command"] == SELECT_SSSE
    assert second["sw"] == "9000"
    assert second["response"].endswith("9000")
    assert (first["meaning_en"], first["meaning"]) == describe(0x9000)


def test_apdu_prints_the_trace_and_status_meaning(card: str) -> None:
    result = run(["--reader", card, "apdu", SELECT_SSSE, "00B2FF2C00"])
    assert result.exit_code == 0, result.stderr
    assert f">> {SELECT_SSSE}" in result.stdout
    assert "6A83" in result.stdout
    assert "已发送 2 条APDU" in result.stdout


def test_apdu_redacts_a_pin_block(card: str) -> None:
    verify = f"0020000103{INITIAL_PIN}"
    result = run(["--json", "--reader", card, "apdu", SELECT_SSSE, verify])
    assert result.exit_code == 0, result.stderr
    exchange = json_out(result)["exchanges"][1]
    assert exchange["redacted"] is True
    assert exchange["sw"] == "9000"
    assert INITIAL_PIN not in result.stdout
    text = run(["--reader", card, "apdu", SELECT_SSSE, verify])
    assert_no_pin([text.stdout, text.stderr], [INITIAL_PIN])
    assert "**(3 bytes)**" in text.stdout


def test_apdu_bad_hex_is_a_usage_error(card: str) -> None:
    result = run(["--json", "--reader", card, "apdu", "00A4ZZ"])
    assert result.exit_code == 2
    assert json_err(result)["national_code"] == "-41"


def test_apdu_malformed_command_is_a_usage_error(card: str) -> None:
    result = run(["--json", "--reader", card, "apdu", "00A4040005AABB"])
    assert result.exit_code == 2
    assert json_err(result)["error"] == "invalid_parameter"


def test_apdu_needs_an_argument() -> None:
    result = run(["apdu"])
    assert result.exit_code == 2


def test_apdu_on_an_empty_reader(spare_reader: str) -> None:
    result = run(["--json", "--reader", spare_reader, "apdu", "00A4040000"])
    assert result.exit_code == 4
    assert json_err(result)["error"] == "no_card"


def test_apdu_may_talk_to_the_psam(psam: str) -> None:
    result = run(["--json", "--reader", psam, "apdu", "00A4040000"])
    assert result.exit_code == 0, result.stderr
    assert len(json_out(result)["exchanges"]) == 1
