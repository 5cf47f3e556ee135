"""The root group: command table, global options everywhere, usage errors,
configuration, the exit-code table and the error reports, progress notes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import pytest
from cli_helpers import json_err, run

from apdu.errors import (
    ApplicationBlocked,
    AuthenticationFailed,
    CardError,
    CardMuteError,
    CardNotGenuine,
    CardRemovedError,
    InvalidInput,
    KeyLocked,
    KeySourceError,
    NoCardError,
    PcscUnavailableError,
    PinBlocked,
    PinEntryError,
    PinError,
    ProtocolError,
    SecureMessagingError,
    SscardError,
    WrongCardType,
)
from card_model.errors import KeySetError
from emulator.stack import StackError
from sm_crypto.errors import CryptoError
from terminal._data import load_data
from terminal.cli import main
from terminal.cli_commands.config import load_settings
from terminal.cli_commands.errors import CliConfigError, DemoSlotUnavailable, PresentationRefused
from terminal.cli_commands.exits import error_body, error_lines, exit_code_for
from terminal.cli_commands.output import Progress, display_width
from terminal.errors import CardDataMismatch, ReaderAmbiguous, ReaderNotMatched, TornOperation
from terminal.registry.errors import CardNotFound, RegistryStorageError

COMMANDS = (
    "readers", "read", "pin", "activate", "block", "unblock", "status", "authenticate",
    "file", "apdu", "demo", "emulator", "serve", "registry", "journal", "bench",
    "issue", "replace", "wallet", "ticket", "bankcard",
)  # fmt: skip


def test_help_lists_every_command() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.stdout
    assert set(load_data("cli")["commands"]) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_the_global_options(name: str) -> None:
    result = run([name, "--help"])
    assert result.exit_code == 0, result.stderr
    for option in ("--reader", "--json", "--config", "--verbose"):
        assert option in result.stdout, f"{name} lacks {option}"


def test_subcommands_of_groups_have_the_global_options() -> None:
    for args in (["pin", "verify"], ["file", "read"], ["registry", "show"], ["emulator", "run"]):
        result = run([*args, "--help"])
        assert result.exit_code == 0, result.stderr
        assert "--json" in result.stdout and "--reader" in result.stdout


def test_version() -> None:
    result = run(["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("sscard ")


def test_unknown_command_is_a_usage_error() -> None:
    result = run(["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_usage_error_as_json() -> None:
    result = run(["--json", "read", "everything"])
    assert result.exit_code == 2
    error = json_err(result)
    assert error["error"] == "usage_error"
    assert error["national_code"] == "-14"
    assert result.stdout == ""


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["no-such-command"]) == 2
    assert main(["--json", "--config", "/nonexistent/sscard.toml", "read", "basic"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.err.strip().splitlines()[-1])["error"] == "cli_config_invalid"


def test_help_does_not_load_the_card_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from terminal.cli import main; main(['--help']);"
        "heavy = ('terminal.session', 'terminal.flows', 'terminal.registry');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# -- configuration ---------------------------------------------------------------------


def test_missing_configuration_file(tmp_path: Path) -> None:
    result = run(["--json", "--config", str(tmp_path / "missing.toml"), "read", "basic"])
    assert result.exit_code == 2
    assert json_err(result)["error"] == "cli_config_invalid"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("[cli]\nkey_sorce = 'psam'\n", "unknown key cli.key_sorce"),
        ("[cli]\nreader = 3\n", "cli.reader must be text"),
        ("[cli]\nkey_source = 'magic'\n", "cli.key_source must be one of"),
        ("[cli]\ntrust_anchors = 'a.pem'\n", "cli.trust_anchors must be a list"),
        ("cli = 1\n", "[cli] must be a table"),
        ("[registry]\nurl = 5\n", "registry.url must be text"),
        ("[cli\n", "not valid TOML"),
    ],
)
def test_bad_configuration_values(tmp_path: Path, text: str, what: str) -> None:
    config = tmp_path / "sscard.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(CliConfigError) as caught:
        load_settings(config)
    assert what in str(caught.value)
    result = run(["--config", str(config), "read", "basic"])
    assert result.exit_code == 2
    assert "配置" in result.stderr


def test_configuration_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sscard.toml"
    config.write_text(
        '[cli]\nreader = "nothing matches this"\n\n[registry]\nurl = "sqlite:///x.db"\n', encoding="utf-8"
    )
    monkeypatch.setenv("SSCARD_CONFIG", str(config))
    settings = load_settings(str(config))
    assert settings.reader == "nothing matches this"
    assert settings.registry_url == "sqlite:///x.db"
    assert settings.key_source == "auto"


# -- exit codes and error reports ---------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SscardError("x"), 1),
        (ProtocolError("x"), 1),
        (InvalidInput("x", kind="chars"), 2),
        (PinEntryError("x", kind="mismatch"), 2),
        (CliConfigError("x"), 2),
        (click.UsageError("x"), 2),
        (PcscUnavailableError("x"), 3),
        (ReaderNotMatched("x"), 3),
        (ReaderAmbiguous("x"), 3),
        (StackError("x"), 3),
        (DemoSlotUnavailable("x"), 3),
        (NoCardError("x"), 4),
        (CardRemovedError("x"), 4),
        (TornOperation("x", operation="pin.change"), 4),
        (CardMuteError("x"), 4),
        (WrongCardType("x"), 5),
        (PinError(retries_left=2), 6),
        (PinBlocked(), 7),
        (CardError(0x6985), 8),
        (ApplicationBlocked(), 8),
        (KeySourceError("x", kind="no_psam"), 9),
        (AuthenticationFailed(retries_left=4), 9),
        (KeyLocked(), 9),
        (SecureMessagingError(), 9),
        (CardNotGenuine("x"), 9),
        (KeySetError("key_set", "unreadable"), 9),
        (CryptoError("x"), 9),
        (PinEntryError("x", kind="initial_pin_use"), 10),
        (PinEntryError("x", kind="initial_pin_reuse"), 10),
        (CardDataMismatch("x"), 10),
        (PresentationRefused("x", reason="card_lost"), 10),
        (CardNotFound("x"), 10),
        (RegistryStorageError("x"), 1),
        (ValueError("x"), 1),
    ],
)
def test_exit_code_table(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_every_documented_exit_code_is_reachable() -> None:
    codes = load_data("exit_codes")["codes"]
    assert sorted(codes.values()) == list(range(11))
    used = set(load_data("exit_codes")["classes"].values())
    assert used == set(codes) - {"ok"}


def test_error_body_fields() -> None:
    body = error_body(PinError(retries_left=1))
    assert body["error"] == "pin_wrong"
    assert body["message"] == "服务密码错误，还可尝试1次"
    assert body["national_code"] == "-51"
    assert body["sw"] == "63C1"
    assert body["retries_left"] == 1
    assert body["exit_code"] == 6
    ambiguous = error_body(ReaderAmbiguous("x", candidates=["A 00", "A 01"]))
    assert ambiguous["readers"] == ["A 00", "A 01"]


def test_error_lines_are_chinese_then_english() -> None:
    zh, en = error_lines(WrongCardType("not ours", sw=0x6A82))
    assert zh == "错误：卡类型不对，请插入社会保障卡（代码 -1，SW 6A82）"
    assert en == "error: not ours [wrong_card_type]"


def test_unexpected_exception_is_reported_without_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import terminal.readers

    def boom() -> list[object]:
        raise RuntimeError("secret-looking detail 110102197305211008")

    monkeypatch.setattr(terminal.readers, "list_readers", boom)
    result = run(["--json", "readers"])
    assert result.exit_code == 1
    error = json_err(result)
    assert error["error"] == "internal_error"
    assert "110102197305211008" not in result.stderr
    assert "RuntimeError" in result.stderr


def test_pcsc_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import terminal.readers

    def down() -> list[object]:
        raise PcscUnavailableError("SCardEstablishContext failed")

    monkeypatch.setattr(terminal.readers, "list_readers", down)
    result = run(["readers"])
    assert result.exit_code == 3
    assert "智能卡服务（PC/SC）不可用" in result.stderr
    assert run(["--reader", "x", "read", "basic"]).exit_code == 3


# -- output helpers ----------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_appears_only_for_slow_work() -> None:
    quick = _Tty()
    with Progress("读卡 reading", stream=quick, verbose=False, delay=5.0):
        pass
    assert quick.getvalue() == ""
    slow = _Tty()
    with Progress("读卡 reading", stream=slow, verbose=False, delay=0.0) as note:
        deadline = 200
        while not note.shown and deadline:
            deadline -= 1
            import time

            time.sleep(0.005)
    assert "读卡 reading" in slow.getvalue()
    assert slow.getvalue().endswith("\r\x1b[K")


def test_progress_elsewhere_only_when_verbose() -> None:
    quiet = io.StringIO()
    with Progress("x", stream=quiet, verbose=False, delay=0.0):
        pass
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    with Progress("正在连接 connecting", stream=loud, verbose=True, delay=0.0):
        pass
    assert loud.getvalue() == "… 正在连接 connecting\n"


def test_verbose_progress_goes_to_stderr_only(card: str) -> None:
    result = run(["-v", "--json", "--reader", card, "read", "basic"])
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert "正在连接卡片 Connecting to the card" in result.stderr


def test_very_verbose_traces_apdus_redacted(card: str) -> None:
    result = run(["-vv", "--reader", card, "pin", "verify", "--pin-stdin"], input="211008\n")
    assert result.exit_code == 0, result.stderr
    assert "sscard.apdu" in result.stderr
    assert ">> 00 20 00 01 03 **(3 bytes)**" in result.stderr
    assert "21 10 08" not in result.stderr


def test_display_width_counts_wide_characters() -> None:
    assert display_width("卡号 ab") == 7


def test_other_areas_command_objects_are_left_alone() -> None:
    from terminal.registry.cli import registry

    assert run(["registry", "show", "--help"]).exit_code == 0
    names = {opt for param in registry.params for opt in param.opts}
    assert "--json" not in names
    show = registry.commands["show"]
    assert "--reader" not in {opt for param in show.params for opt in param.opts}


def test_global_option_after_another_areas_command(tmp_path: Path) -> None:
    result = run(["registry", "show", "110102D156000005FFFFFFFFFFFFFFFF", "--json"])
    assert result.exit_code == 10
    assert json_err(result)["error"] == "card_not_found"
