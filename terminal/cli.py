"""``sscard``: the command line of the terminal (console script ``terminal.cli:main``).

A thin layer over the terminal API (readers, sessions, flows, key sources),
in the manner of yubikey-manager's ``ykman``.  The root group carries the
global options ``--reader``, ``--json``, ``--config``, ``-v`` (accepted on
every command as well, :mod:`terminal.cli_commands.state`).  Commands are
listed in ``terminal/data/cli.toml`` ``[commands]`` and imported only when
they run, so ``sscard --help`` does not load the card stack.

:func:`main` maps every error to the documented exit code
(``terminal/data/exit_codes.toml``: 0 ok, 1 other, 2 usage, 3 PC/SC or reader
unavailable, 4 no card, 5 wrong card type, 6 PIN wrong, 7 PIN blocked,
8 card refused, 9 key source or authentication, 10 business rule or
registry) and reports it on standard error: Chinese message with the
national code, English message; with ``--json`` the JSON error body.
See docs/cli.md.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from apdu.errors import SscardError
from terminal._data import load_data
from terminal.cli_commands.errors import InternalFailure, OperationCancelled, UsageProblem
from terminal.cli_commands.exits import exit_code_for, report_error
from terminal.cli_commands.state import cli_state, configure_logging, global_params, with_global_options

__all__ = ["SscardGroup", "cli", "main"]

log = logging.getLogger("sscard.cli")


def _table() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = load_data("cli")["commands"]
    return table


class SscardGroup(click.Group):
    """The root group: lazily imported commands, errors mapped to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_table(), *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        row = _table().get(cmd_name)
        if row is None:
            return None
        module_name, _, attribute = row["target"].partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{row['target']} is not a click command")
        command = with_global_options(command)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table's help texts (no import needed)."""
        rows = []
        for name in self.list_commands(ctx):
            row = _table().get(name)
            if row is not None:
                rows.append((name, row["help"]))
            elif name in self.commands and not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, BrokenPipeError):
            raise  # click ends these itself (a closed pipe on stdout: quietly)
        except click.exceptions.Abort:
            # a declined confirmation or Ctrl+C / end of input at a prompt
            ctx.exit(report_error(OperationCancelled("cancelled at a prompt"), json_mode=cli_state(ctx).json))
        except click.ClickException as exc:
            if not cli_state(ctx).json:
                raise
            report_error(UsageProblem(exc.format_message()), json_mode=True)
            ctx.exit(exc.exit_code)
        except SscardError as exc:
            ctx.exit(report_error(exc, json_mode=cli_state(ctx).json))
        except Exception as exc:
            ctx.exit(_unexpected(ctx, exc))


def _unexpected(ctx: click.Context, exc: BaseException) -> int:
    """Report an exception that is not an SscardError: its mapped exit code
    (emulator stack, crypto) or 1; the text only with ``-v`` (it could carry data)."""
    state = cli_state(ctx)
    log.debug("unexpected %s", type(exc).__name__, exc_info=exc)
    failure = InternalFailure(f"{type(exc).__name__}: {exc}" if state.verbose else type(exc).__name__)
    report_error(failure, json_mode=state.json)
    return exit_code_for(exc)


def _root_help() -> str:
    return (
        "sscard：北京第三代社保卡读卡终端。Card terminal for Beijing's social security card.\n\n"
        "全局选项可放在任何命令之后。The global options are accepted after any command too. "
        "Exit codes: 0 ok, 1 other, 2 usage, 3 PC/SC or reader unavailable, 4 no card, "
        "5 wrong card type, 6 PIN wrong, 7 PIN blocked, 8 card refused, 9 key source or "
        "authentication, 10 business rule or registry (docs/cli.md)."
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sscard")
    except PackageNotFoundError:
        return "unknown"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"sscard {_version()}")
        ctx.exit(0)


@click.group(
    cls=SscardGroup,
    help=_root_help(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version.",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    configure_logging(cli_state(ctx).verbose)


cli.params.extend(global_params(root=True))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sscard``; returns the exit code (the console script exits with it)."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="sscard", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else exit_code_for(InternalFailure())
    except SscardError as exc:
        return report_error(exc, json_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
