"""`sscard read` and the reader / card error paths, through click's runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cli_helpers import (
    OTHER_SLOT,
    SPARE_SLOT,
    SSN,
    ForeignCard,
    card_os,
    inserted,
    json_err,
    json_out,
    run,
)

from apdu import pcsc
from card_model.demo import demo_card_image
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS

BASIC_FIELDS = {
    "generation",
    "spec_version",
    "card_type",
    "card_id",
    "region_code",
    "init_org",
    "issue_date",
    "expiry_date",
    "card_number",
    "atr",
}
HOLDER_FIELDS = {
    "ssn",
    "name",
    "name_extension",
    "gender",
    "gender_text",
    "ethnicity",
    "ethnicity_text",
    "birthplace",
    "birth_date",
}


def test_read_basic_json_has_the_contract_fields(card: str) -> None:
    result = run(["--json", "--reader", card, "read", "basic"])
    assert result.exit_code == 0, result.stderr
    basic = json_out(result)["basic"]
    assert set(basic) == BASIC_FIELDS
    assert basic["generation"] == 3
    assert basic["spec_version"] == "3.00"
    assert basic["card_number"] == "X00000019"
    assert basic["issue_date"] == "2025-03-01"
    assert basic["region_code"] == "110102"
    assert len(basic["card_id"]) == 32


def test_read_basic_text_is_bilingual(card: str) -> None:
    result = run(["--reader", card, "read", "basic"])
    assert result.exit_code == 0, result.stderr
    assert "卡号 card number" in result.stdout
    assert "X00000019" in result.stdout
    assert "规范版本 spec version" in result.stdout
    assert result.stderr == ""


def test_global_options_after_the_command(card: str) -> None:
    result = run(["read", "basic", "--json", "--reader", card])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["basic"]["generation"] == 3


def test_read_holder_with_the_psam(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "read", "holder", "--psam-reader", psam])
    assert result.exit_code == 0, result.stderr
    holder = json_out(result)["holder"]
    assert set(holder) == HOLDER_FIELDS
    assert holder["ssn"] == SSN
    assert holder["name"] == "张三"
    assert holder["gender"] == "1"
    assert holder["gender_text"] == "男"
    assert holder["birth_date"] == "1973-05-21"


def test_read_all_text(card: str, psam: str) -> None:
    result = run(["--reader", card, "read"])
    assert result.exit_code == 0, result.stderr
    assert "姓名 name" in result.stdout
    assert "张三" in result.stdout
    assert "卡识别码 card id code" in result.stdout


def test_read_national_string(card: str, psam: str) -> None:
    result = run(["--json", "--reader", card, "read", "--national"])
    assert result.exit_code == 0, result.stderr
    fields = json_out(result)["national"].split("|")
    assert len(fields) == 12 and fields[-1] == ""
    assert fields[0] == "110102"
    assert fields[1] == SSN
    assert fields[2] == "X00000019"
    assert fields[4] == "张三"
    assert fields[6] == "3.00"
    assert fields[9] == "110102000001"  # the PSAM's terminal number


def test_read_national_without_a_key_source_leaves_ssn_and_name_empty(card: str) -> None:
    result = run(["--json", "--reader", card, "read", "--national", "--key-source", "none"])
    assert result.exit_code == 0, result.stderr
    fields = json_out(result)["national"].split("|")
    assert fields[1] == "" and fields[4] == ""
    assert fields[2] == "X00000019"


def test_read_holder_without_a_psam_is_a_key_source_error(card: str, spare_reader: str) -> None:
    result = run(["--json", "--reader", card, "read", "holder", "--psam-reader", spare_reader])
    assert result.exit_code == 9
    error = json_err(result)
    assert error["error"] == "no_psam"
    assert error["national_code"] == "-2201"
    assert result.stdout == ""


def test_read_holder_with_no_key_source_configured(card: str) -> None:
    result = run(["--reader", card, "read", "holder", "--key-source", "none"])
    assert result.exit_code == 9
    assert "未插入PSAM卡" in result.stderr
    assert "-2201" in result.stderr


def test_read_holder_with_a_dev_key_file(card: str, key_file: Path) -> None:
    result = run(["--json", "--reader", card, "read", "holder", "--key-file", str(key_file)])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["holder"]["ssn"] == SSN
    assert "NOT FOR PRODUCTION" in result.stderr


def test_read_holder_with_the_software_hsm(card: str, key_file: Path) -> None:
    args = [
        "--json",
        "--reader",
        card,
        "read",
        "holder",
        "--key-source",
        "software_hsm",
        "--key-file",
        str(key_file),
    ]
    result = run(args)
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["holder"]["name"] == "张三"


def test_wrong_keys_fail_external_authentication(card: str, tmp_path: Path) -> None:
    from card_model.demo import demo_key_set

    wrong = tmp_path / "wrong-keys.toml"
    IssuerKeySet({role: bytes(16) for role in demo_key_set().masters}).save(wrong)
    result = run(["--json", "--reader", card, "read", "holder", "--key-file", str(wrong)])
    assert result.exit_code == 9
    error = json_err(result)
    assert error["error"] == "authentication_failed"
    assert error["sw"].startswith("63C")


def test_unreadable_key_file_is_a_key_source_error(card: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run(["--json", "--reader", card, "read", "holder", "--key-file", str(missing)])
    assert result.exit_code == 9
    assert json_err(result)["error"] == "key_set_invalid"


def test_empty_reader_is_no_card(spare_reader: str) -> None:
    result = run(["--json", "--reader", spare_reader, "read", "basic"])
    assert result.exit_code == 4
    error = json_err(result)
    assert error["error"] == "no_card"
    assert error["national_code"] == "-2"
    assert result.stdout == ""


def test_no_card_text_message(spare_reader: str) -> None:
    result = run(["--reader", spare_reader, "read", "basic"])
    assert result.exit_code == 4
    assert "错误：请插卡（代码 -2）" in result.stderr
    assert "[no_card]" in result.stderr


def test_unknown_reader_is_reader_unavailable(pcsc_stack: object) -> None:
    result = run(["--json", "--reader", "no such reader here", "read", "basic"])
    assert result.exit_code == 3
    error = json_err(result)
    assert error["error"] == "reader_not_found"
    assert error["national_code"] == "-12"
    assert error["readers"]


def test_ambiguous_reader_lists_the_candidates(pcsc_stack: object) -> None:
    result = run(["--json", "--reader", "Virtual PCD", "read", "basic"])
    assert result.exit_code == 3
    error = json_err(result)
    assert error["error"] == "reader_ambiguous"
    assert len(error["readers"]) > 1


def test_foreign_card_is_wrong_card_type(other_reader: str) -> None:
    with inserted(ForeignCard(), OTHER_SLOT, other_reader):
        result = run(["--json", "--reader", other_reader, "read", "basic"])
    assert result.exit_code == 5
    error = json_err(result)
    assert error["error"] == "wrong_card_type"
    assert error["national_code"] == "-1"
    assert error["sw"] == "6A82"


def test_psam_is_not_a_social_security_card(psam: str) -> None:
    result = run(["--reader", psam, "read", "basic"])
    assert result.exit_code == 5
    assert "卡类型不对" in result.stderr


def test_blocked_application_refuses_the_holder_read(put_card: Callable[[CardOS], str], psam: str) -> None:
    reader = put_card(card_os(LifeCycle.TEMPORARILY_BLOCKED))
    basic = run(["--json", "--reader", reader, "read", "basic"])
    holder = run(["--json", "--reader", reader, "read", "holder"])
    assert basic.exit_code == 0, basic.stderr
    assert holder.exit_code == 8
    assert json_err(holder)["error"] == "application_blocked"


def test_reader_from_the_configuration(card: str, tmp_path: Path) -> None:
    config = tmp_path / "sscard.toml"
    config.write_text(f'[cli]\nreader = "{card}"\n', encoding="utf-8")
    result = run(["--json", "--config", str(config), "read", "basic"])
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["basic"]["card_number"] == "X00000019"


def test_generation_1_card_reads_holder_without_a_key(other_reader: str) -> None:
    with inserted(card_os(generation=1), OTHER_SLOT, other_reader):
        result = run(["--json", "--reader", other_reader, "read", "all", "--key-source", "none"])
    assert result.exit_code == 0, result.stderr
    payload = json_out(result)
    assert payload["basic"]["generation"] == 1
    assert payload["holder"]["ssn"]


def test_itype_picks_among_the_readers_the_text_matches(
    other_reader: str, spare_reader: str, tmp_path: Path
) -> None:
    """Slot 10 a contactless gen-3 card, slot 11 a contact gen-2 card; --reader
    matches exactly those two readers, --itype picks by the national rule."""
    pair = other_reader[
        : next(i for i, (a, b) in enumerate(zip(other_reader, spare_reader, strict=False)) if a != b)
    ]
    assert [r for r in pcsc.list_readers() if pair.casefold() in r.casefold()] == [other_reader, spare_reader]
    contactless = CardOS(demo_card_image(3), interface="contactless")
    with (
        inserted(contactless, OTHER_SLOT, other_reader),
        inserted(card_os(generation=2), SPARE_SLOT, spare_reader),
    ):
        ambiguous = run(["--json", "--reader", pair, "read", "basic"])
        assert ambiguous.exit_code == 3 and json_err(ambiguous)["error"] == "reader_ambiguous"
        picked = {}
        for itype in ("1", "2", "3", "4"):
            result = run(["--json", "--reader", pair, "read", "basic", "--itype", itype])
            assert result.exit_code == 0, result.stderr
            picked[itype] = json_out(result)["basic"]["generation"]
        assert picked == {"1": 2, "2": 3, "3": 2, "4": 3}
        config = tmp_path / "sscard.toml"
        config.write_text(f'[cli]\nreader = "{pair}"\nitype = 4\n', encoding="utf-8")
        from_config = run(["--json", "--config", str(config), "read", "basic"])
        assert from_config.exit_code == 0, from_config.stderr
        assert json_out(from_config)["basic"]["generation"] == 3
    bad = run(["--json", "read", "basic", "--itype", "5"])
    assert bad.exit_code == 2 and json_err(bad)["error"] == "usage_error"
    config.write_text("[cli]\nitype = 7\n", encoding="utf-8")
    assert run(["--config", str(config), "read", "basic"]).exit_code == 2
