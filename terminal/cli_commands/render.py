"""Readable lines for the flows' results, from their ``to_dict()`` JSON (so the
text and the ``--json`` output always say the same)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terminal.cli_commands.output import field_lines, text, yes_no

__all__ = [
    "authenticity_lines",
    "basic_lines",
    "generic_read_lines",
    "generic_write_lines",
    "holder_lines",
    "life_cycle_lines",
    "national_line",
    "pin_operation_lines",
    "pin_status_lines",
    "status_lines",
]

BASIC_FIELDS = (
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
)


def _coded(code: Any, meaning: Any) -> str:
    return f"{meaning} ({code})" if meaning else str(code)


def basic_lines(basic: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    return field_lines("basic", [(key, basic.get(key)) for key in BASIC_FIELDS], indent=indent)


def holder_lines(holder: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    rows: list[tuple[str, Any]] = [("ssn", holder.get("ssn")), ("name", holder.get("name"))]
    if holder.get("name_extension"):
        rows.append(("name_extension", holder["name_extension"]))
    rows += [
        ("gender", _coded(holder.get("gender"), holder.get("gender_text"))),
        ("ethnicity", _coded(holder.get("ethnicity"), holder.get("ethnicity_text"))),
        ("birthplace", holder.get("birthplace")),
        ("birth_date", holder.get("birth_date")),
    ]
    return field_lines("holder", rows, indent=indent)


def _pin_state(state: Any) -> str:
    return text("pin_states", str(state)) if state in ("ok", "initial", "blocked") else str(state)


def pin_status_lines(status: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    return field_lines(
        "pin",
        [
            ("state", _pin_state(status.get("state"))),
            ("retries_left", status.get("retries_left")),
            ("max_tries", status.get("max_tries")),
        ],
        indent=indent,
    )


def pin_operation_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    head = text("operations", str(result.get("operation")))
    return [" " * indent + head, *pin_status_lines(result, indent=indent)]


def _life_cycle_text(name: Any) -> str:
    if name is None:
        return text("words", "none")
    from card_model.lifecycle import LifeCycle

    try:
        state = LifeCycle.from_label(str(name))
    except KeyError:
        return str(name)
    return f"{state.text} {state.text_en}"


def life_cycle_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    operation = str(result.get("operation"))
    head = text("operations", "unblock_app" if operation == "unblock" else operation)
    return [
        " " * indent + head,
        *field_lines(
            "life_cycle",
            [
                ("life_cycle_before", _life_cycle_text(result.get("life_cycle_before"))),
                ("life_cycle", _life_cycle_text(result.get("life_cycle"))),
            ],
            indent=indent,
        ),
    ]


def status_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    pin = result.get("pin") or {}
    pin_text = f"{_pin_state(pin.get('state'))}, {pin.get('retries_left')}/{pin.get('max_tries')}"
    keys = result.get("keys")
    if keys is None:
        keys_text = text("words", "none")
    else:
        keys_text = ", ".join(f"{k['role']} {k['tries_left']}/{k['max_tries']}" for k in keys)
    return field_lines(
        "status",
        [
            ("generation", result.get("generation")),
            ("profile_version", result.get("profile_version")),
            ("life_cycle", _life_cycle_text(result.get("life_cycle"))),
            ("pin", pin_text),
            ("keys", keys_text),
        ],
        indent=indent,
    )


def authenticity_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    return field_lines(
        "authenticity",
        [
            ("genuine", yes_no(bool(result.get("genuine")))),
            ("symmetric", yes_no(result.get("symmetric"))),
            ("sm2", yes_no(result.get("sm2"))),
            ("certificate_subject", result.get("certificate_subject")),
            ("certificate_serial", result.get("certificate_serial")),
            ("anchor_subject", result.get("anchor_subject")),
        ],
        indent=indent,
    )


def generic_read_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    pad = " " * indent
    lines = field_lines("generic", [("file", result.get("file"))], indent=indent)
    for record in result.get("records", []):
        lines.append(f"{pad}  {record['tag']}  {record['value']}")
    lines += field_lines("generic", [("national", result.get("national"))], indent=indent)
    return lines


def generic_write_lines(result: Mapping[str, Any], *, indent: int = 0) -> list[str]:
    return field_lines(
        "generic",
        [("file", result.get("file")), ("tags", " ".join(result.get("tags", [])))],
        indent=indent,
    )


def national_line(value: str) -> str:
    return f"{text('words', 'national')}: {value}"
