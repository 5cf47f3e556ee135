"""`sscard demo` in process (slots 10 and 11): every step as it must be, the
JSON report, busy or missing slots, a step that goes wrong."""

from __future__ import annotations

import pytest
from cli_helpers import (
    DEMO_PINS,
    OTHER_SLOT,
    SPARE_SLOT,
    ForeignCard,
    assert_no_pin,
    inserted,
    json_err,
    json_out,
    run,
)

import terminal.demo
from terminal.demo import StepSpec, step_specs

DEMO = ["demo", "--slot", str(OTHER_SLOT), "--psam-slot", str(SPARE_SLOT)]
STEPS = [
    "stack", "issue", "read_basic", "read_holder", "national", "authenticate", "pin_status",
    "wrong_pin_1", "wrong_pin_2", "wrong_pin_3", "locked", "unblock_pin", "reset_pin",
    "change_pin", "verify_pin", "activate", "card_status",
]  # fmt: skip


def test_demo_json(pcsc_stack: object, other_reader: str, spare_reader: str) -> None:
    result = run(["--json", *DEMO])
    assert result.exit_code == 0, result.stderr
    report = json_out(result)
    assert report["ok"] is True
    assert report["error"] is None
    assert report["card_reader"] == other_reader
    assert report["psam_reader"] == spare_reader
    assert report["pcscd_started"] is False
    assert [step["step"] for step in report["steps"]] == STEPS
    assert all(step["ok"] for step in report["steps"])
    steps = {step["step"]: step for step in report["steps"]}
    assert steps["read_holder"]["result"]["name"] == "张三"
    assert [steps[f"wrong_pin_{n}"]["error"]["retries_left"] for n in (1, 2, 3)] == [2, 1, 0]
    assert steps["locked"]["error"]["error"] == "pin_blocked"
    assert steps["unblock_pin"]["result"]["retries_left"] == 3
    assert steps["reset_pin"]["result"]["state"] == "initial"
    assert steps["change_pin"]["result"]["state"] == "ok"
    assert steps["activate"]["result"]["life_cycle"] == "active"
    assert steps["card_status"]["result"]["life_cycle"] == "active"
    assert report["journal_entries"] >= 15
    assert_no_pin([result.stdout, result.stderr], DEMO_PINS)


def test_demo_text(pcsc_stack: object) -> None:
    result = run(DEMO)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sscard 演示")
    assert "[ 8/17] ✓ 输入错误的服务密码（第1次）  wrong service password (1st try)" in result.stdout
    assert "预期的错误 expected error: 服务密码错误，还可尝试2次（代码 -51，SW 63C2）" in result.stdout
    assert "[17/17] ✓" in result.stdout
    assert lines[-1] == "演示完成，全部步骤符合预期 / demo finished, every step as expected"
    assert_no_pin([result.stdout, result.stderr], DEMO_PINS)


def test_demo_refuses_a_slot_holding_someone_elses_card(pcsc_stack: object, other_reader: str) -> None:
    with inserted(ForeignCard(), OTHER_SLOT, other_reader):
        result = run(["--json", *DEMO])
    assert result.exit_code == 3
    assert json_err(result)["error"] == "demo_slot_unavailable"
    report = json_out(result)
    assert report["ok"] is False
    assert [step["step"] for step in report["steps"]] == ["stack", "issue"]
    assert report["steps"][1]["ok"] is False


def test_demo_card_and_psam_need_two_slots(pcsc_stack: object) -> None:
    result = run(["demo", "--slot", "10", "--psam-slot", "10"])
    assert result.exit_code == 3
    assert "没有可用的虚拟读卡器槽位" in result.stderr


def test_demo_step_with_another_outcome_stops_the_demo(
    pcsc_stack: object, monkeypatch: pytest.MonkeyPatch, other_reader: str
) -> None:
    specs = [
        StepSpec(s.key, s.zh, s.en, "pin_wrong" if s.key == "read_basic" else s.expect) for s in step_specs()
    ]
    monkeypatch.setattr(terminal.demo, "step_specs", lambda: specs)
    result = run(["--json", *DEMO])
    assert result.exit_code == 1
    assert json_err(result)["error"] == "demo_step_failed"
    report = json_out(result)
    assert report["steps"][-1]["step"] == "read_basic"
    assert report["steps"][-1]["ok"] is False
    # the cleanup ran: the demo's card left its reader
    readers = {r["name"]: r for r in json_out(run(["--json", "readers"]))["readers"]}
    assert readers[other_reader]["card_present"] is False
