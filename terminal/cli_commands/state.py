"""The CLI's root context object and the four global options.

``sscard --reader TEXT --json --config PATH -v`` are accepted on the root
group and on every command below it (``sscard read --json`` works as well as
``sscard --json read``): :func:`with_global_options` gives the root group a
copy of every command tree with them added, also of the groups of other
areas (registry, journal, emulator, serve, bench), skipping an option name a
command already has (the command's own option then wins, e.g. ``serve
--config``).  Their values go to the object of the root click context
(``ctx.find_root().obj``, a :class:`CliState` unless a caller gave another:
``json``, ``verbose``, ``config_path``, ``reader``), which the other areas'
commands read as well.  An option that is not given changes nothing.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from terminal.cli_commands.config import CliSettings

__all__ = ["CliState", "cli_state", "configure_logging", "global_params", "with_global_options"]

CONFIG_ENV = "SSCARD_CONFIG"


@dataclass
class CliState:
    """Global options of one ``sscard`` invocation."""

    json: bool = False
    verbose: int = 0
    config_path: str | None = None
    reader: str | None = None
    _settings: CliSettings | None = field(default=None, repr=False)

    def settings(self) -> CliSettings:
        """The ``[cli]`` configuration (``--config`` / ``$SSCARD_CONFIG``), loaded once."""
        if self._settings is None:
            from terminal.cli_commands.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings


def cli_state(ctx: click.Context | None = None) -> CliState:
    """The :class:`CliState` of the root context (created on first use)."""
    root = (ctx if ctx is not None else click.get_current_context()).find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    state: CliState = root.obj
    return state


# -- logging to standard error ---------------------------------------------------


class _StderrHandler(logging.Handler):
    """Writes to the standard error stream current at the time of the record
    (click's runner swaps it between invocations)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def configure_logging(verbose: int) -> None:
    """``sscard`` loggers to standard error: warnings by default, INFO with
    ``-v``, DEBUG (APDU traces, redacted) with ``-vv``."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("sscard")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    logger.setLevel(level)
    _HANDLER.setLevel(level)


# -- the global options ----------------------------------------------------------------


def _target(ctx: click.Context) -> Any:
    """The root context object the options write to (a CliState when there is none)."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    return root.obj


def _set_reader(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _target(ctx).reader = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        _target(ctx).json = True


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        target = _target(ctx)
        target.config_path = value
        if isinstance(target, CliState):
            target._settings = None


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        target = _target(ctx)
        target.verbose = int(getattr(target, "verbose", 0) or 0) + value
        configure_logging(target.verbose)


def global_params(*, root: bool = False) -> list[click.Parameter]:
    """Fresh option objects for ``--reader``, ``--json``, ``--config``, ``-v``
    (``root``: ``--config`` also reads ``$SSCARD_CONFIG``)."""
    return [
        click.Option(
            ["--reader"],
            metavar="TEXT",
            expose_value=False,
            callback=_set_reader,
            help="读卡器名称的一部分（须唯一匹配）。Part of the reader name; must match exactly one reader.",
        ),
        click.Option(
            ["--json"],
            is_flag=True,
            expose_value=False,
            callback=_set_json,
            help="标准输出只输出JSON。Machine-readable JSON on stdout, nothing else.",
        ),
        click.Option(
            ["--config"],
            metavar="PATH",
            type=click.Path(dir_okay=False),
            envvar=CONFIG_ENV if root else None,
            expose_value=False,
            callback=_set_config,
            help="配置文件（TOML）。Configuration file (default $SSCARD_CONFIG).",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_set_verbose,
            help="详细输出（-vv 含脱敏的APDU记录）。More output on stderr (-vv: redacted APDU trace).",
        ),
    ]


def _names(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def with_global_options(command: click.Command) -> click.Command:
    """A copy of ``command`` (and of every command below it) with the global
    options added; an option whose name a command already uses is skipped.
    The original objects are left alone (other areas use them on their own)."""
    clone = copy.copy(command)
    used = _names(command)
    clone.params = [*command.params, *(p for p in global_params() if not used.intersection(p.opts))]
    children: dict[str, Any] | None = getattr(command, "commands", None)
    if isinstance(clone, click.Group) and children:
        clone.commands = {
            name: with_global_options(child) if isinstance(child, click.Command) else child
            for name, child in children.items()
        }
    return clone
