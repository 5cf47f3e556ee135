"""Holder TOML (interfaces.md) into validated holder and card data."""

from __future__ import annotations

from pathlib import Path

import pytest

from card_model.errors import HolderFileError, InvalidCharacters, InvalidValue
from card_model.holder import CardData, HolderData, derive_serial, load_holder_file, parse_holder_toml

EXAMPLE = """
[holder]
ssn = "110102197305211008"
name = "张三"
gender = "1"
ethnicity = "01"
birthplace = "110102"
birth_date = "1973-05-21"

[card]
card_number = "X00000019"
region_code = "110102"
issue_date = "2025-03-01"
expiry_date = "2035-02-28"
bank = "Bank of Beijing"
"""


def test_interfaces_example(tmp_path: Path) -> None:
    path = tmp_path / "holder.toml"
    path.write_text(EXAMPLE, "utf-8")
    holder, card = load_holder_file(path)
    assert holder.name.value == "张三" and holder.gender.text == "男"
    assert holder.address is None
    assert card.bank.code == "BOB"
    assert card.serial == derive_serial(card.card_number)
    assert card.card_id.hex().startswith("110102D156000005")
    assert HolderData.from_mapping(holder.to_mapping()) == holder
    assert CardData.from_mapping(card.to_mapping()) == card


def _with(section: str, key: str, value: str | None) -> str:
    lines = []
    current = ""
    for line in EXAMPLE.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        if current == section and line.startswith(f"{key} ="):
            if value is not None:
                lines.append(f"{key} = {value}")
            continue
        lines.append(line)
    if value is not None and not any(line.startswith(f"{key} =") for line in lines):
        index = lines.index(f"[{section}]") + 1
        lines.insert(index, f"{key} = {value}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("section", "key", "value", "error"),
    [
        ("holder", "birth_date", '"1973-05-22"', InvalidValue),  # differs from the SSN
        ("holder", "ssn", '"110102197305211009"', InvalidValue),
        ("holder", "ssn", None, InvalidValue),
        ("holder", "gender", '"5"', InvalidValue),
        ("holder", "postcode", '"1000"', InvalidValue),
        ("holder", "phone", '"电话"', InvalidCharacters),
        ("holder", "hobby", '"chess"', HolderFileError),
        ("card", "expiry_date", '"2025-02-28"', InvalidValue),
        ("card", "region_code", '"120101"', InvalidValue),
        ("card", "bank", '"Bank of Mars"', InvalidValue),
        ("card", "serial", '"00"', InvalidValue),
        ("card", "init_org", '"ZZ"', InvalidCharacters),
        ("card", "card_type", '"X"', InvalidCharacters),
    ],
)
def test_holder_errors(section: str, key: str, value: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_holder_toml(_with(section, key, value))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(HolderFileError):
        load_holder_file(tmp_path / "none.toml")
    with pytest.raises(HolderFileError):
        parse_holder_toml("[holder")
    with pytest.raises(HolderFileError):
        parse_holder_toml(EXAMPLE.split("[card]")[0])
    with pytest.raises(HolderFileError):
        parse_holder_toml(EXAMPLE + "\n[extra]\na = 1\n")


def test_explicit_serial_and_contact_fields() -> None:
    text = _with("holder", "address", '"北京市东城区"').replace(
        'bank = "Bank of Beijing"', 'bank = "Bank of Beijing"\nserial = "0102030405060708"'
    )
    holder, card = parse_holder_toml(text)
    assert card.serial == bytes.fromhex("0102030405060708")
    assert holder.address == "北京市东城区"
