"""``sscard issue`` and ``sscard replace``: instant issuance at the counter.

::

    sscard issue --holder HOLDER.toml [--activate]          issue, or resume an interrupted issuance
    sscard issue --inspect                                   the blank card's personalisation progress
    sscard issue --scrap                                     take an unfinished blank card out of use
    sscard replace OLD_CARD_ID --holder HOLDER.toml [--reason lost|damaged] [--activate]

The holder file is the TOML of interfaces.md (``[holder]`` and ``[card]``
with ``card_number``, ``issue_date``, ``expiry_date``, ``bank``; a
``region_code`` is checked against the blank card, which carries its own
card identification code).  The card keys come from the key source
(``--psam-reader`` / ``--key-source`` / ``--key-file`` as for every card
command): only WRITE KEY cryptograms reach the terminal.  The certificates
come from the local test CA (the demo root: NOT FOR PRODUCTION).  Every
step is journaled in the registry's journal, and the card is recorded in the
registry (``--db`` / ``$SSCARD_DB_URL`` / ``[cli] registry_url``).  Global
options (``--reader``, ``--json``, ``--config``, ``-v``) and exit codes as for
every command: 9 key source or CA, 10 refused (another holder's data on the
card, a card already issued, a registry rule), 4 no card.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import click

from terminal._data import load_data

if TYPE_CHECKING:
    from terminal.issuance import IssuanceOrder, LocalTestCa
    from terminal.registry import Actor, Registry
    from terminal.session import CardSession

__all__ = ["issue_command", "replace_command"]


def _help(key: str) -> str:
    return str(load_data("issuance")["cli"]["help"][key])


def _lines(payload: Mapping[str, Any]) -> list[str]:
    labels: Mapping[str, list[str]] = load_data("issuance")["cli"]["labels"]
    out = []
    for key, (zh, en) in labels.items():
        if key not in payload:
            continue
        value = payload[key]
        if isinstance(value, bool):
            shown = "是 yes" if value else "否 no"
        elif isinstance(value, list):
            shown = ", ".join(str(v.get("note", v)) if isinstance(v, dict) else str(v) for v in value) or "-"
        else:
            shown = "-" if value is None else str(value)
        out.append(f"{zh} {en}: {shown}")
    return out


@dataclass
class _Opened:
    session: CardSession
    registry: Registry
    actor: Actor
    ca: LocalTestCa


@contextmanager
def _open(ctx: click.Context, options: Mapping[str, Any], *, keys_needed: bool) -> Iterator[_Opened]:
    """Reader, key source, registry and journal; the session is not connected
    (a blank card cannot be detected like an issued one)."""
    from apdu.pcsc import PcscTransport
    from terminal.cli_commands.card import select_card_reader
    from terminal.cli_commands.keys import CliKeySource
    from terminal.cli_commands.output import progress
    from terminal.cli_commands.state import cli_state
    from terminal.issuance import LocalTestCa
    from terminal.journal_hook import RegistryJournal
    from terminal.registry import Actor, open_registry
    from terminal.session import CardSession

    settings = cli_state(ctx).settings()
    reader = select_card_reader(ctx)
    ca = LocalTestCa()
    with ExitStack() as stack:
        source = None
        if keys_needed:
            kind = options.get("key_source") or settings.key_source
            if options.get("key_file") and not options.get("key_source"):
                kind = "dev_key_file"
            keys = CliKeySource(
                kind if kind != "none" else "auto",
                psam_reader=options.get("psam_reader") or settings.psam_reader,
                key_file=options.get("key_file") or settings.key_file,
                terminal_number=settings.terminal_number,
                busy=lambda: progress(ctx, "psam"),
            )
            stack.callback(keys.close)
            source = keys.open()
        url = options.get("db") or os.environ.get("SSCARD_DB_URL") or settings.registry_url
        with progress(ctx, "registry"):
            registry, journal = open_registry(url)
        stack.callback(registry.close)
        actor = Actor(
            operator=options.get("operator") or settings.operator or _login_name(),
            terminal=options.get("terminal") or settings.terminal or socket.gethostname() or "sscard-cli",
        )
        hook = RegistryJournal(journal, terminal=actor.terminal, operator=actor.operator)
        session = CardSession(
            PcscTransport(reader.name, dispose="reset_if_changed"),
            key_source=source,
            journal=hook,
            trust_anchors=ca.anchors,
            terminal_number=settings.terminal_number or None,
            device_number=settings.device_number,
        )
        stack.callback(_close, session)
        yield _Opened(session, registry, actor, ca)


def _close(session: CardSession) -> None:
    if session.transport.connected:
        session.close()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "sscard"


def _emit(ctx: click.Context, payload: Mapping[str, Any]) -> None:
    from terminal.cli_commands.output import emit

    emit(ctx, payload, _lines(payload))


def _options(fn: Any) -> Any:
    """The key source and registry options of both commands."""
    for option in reversed(
        [
            click.option(
                "--holder",
                "holder_path",
                metavar="PATH",
                type=click.Path(dir_okay=False),
                help=_help("holder"),
            ),
            click.option("--activate", is_flag=True, help=_help("activate")),
            click.option(
                "--psam-reader",
                metavar="TEXT",
                help="PSAM读卡器名称的一部分。Part of the PSAM reader's name.",
            ),
            click.option(
                "--key-source",
                type=click.Choice(["auto", "psam", "dev_key_file", "software_hsm"]),
                help="密钥来源。Where the card keys come from (default: the configuration's, auto).",
            ),
            click.option(
                "--key-file",
                metavar="PATH",
                type=click.Path(dir_okay=False),
                help="开发用密钥文件（严禁用于生产）。Development key file.",
            ),
            click.option("--db", metavar="URL", help=_help("db")),
            click.option("--operator", metavar="TEXT", help=_help("operator")),
            click.option("--terminal", metavar="TEXT", help=_help("terminal")),
        ]
    ):
        fn = option(fn)
    return fn


def _order(holder_path: str | None) -> IssuanceOrder:
    from terminal.cli_commands.errors import UsageProblem
    from terminal.issuance import IssuanceOrder

    if not holder_path:
        raise UsageProblem("--holder HOLDER.toml is needed")
    return IssuanceOrder.load(holder_path)


@click.command("issue", help=_help("issue"))
@click.option("--inspect", is_flag=True, help=_help("inspect"))
@click.option("--scrap", is_flag=True, help=_help("scrap"))
@_options
@click.pass_context
def issue_command(
    ctx: click.Context, /, inspect: bool, scrap: bool, holder_path: str | None, activate: bool, **options: Any
) -> None:
    from terminal.cli_commands.errors import UsageProblem
    from terminal.cli_commands.output import progress
    from terminal.flows.issuance import inspect_card, issue_card, scrap_card

    if inspect and scrap:
        raise UsageProblem("--inspect and --scrap exclude each other")
    if inspect or scrap:
        with _open(ctx, options, keys_needed=scrap) as opened, progress(ctx, "flow"):
            payload = (scrap_card if scrap else inspect_card)(opened.session).to_dict()
        _emit(ctx, payload)
        return
    order = _order(holder_path)
    with _open(ctx, options, keys_needed=True) as opened, progress(ctx, "flow"):
        result = issue_card(
            opened.session,
            order,
            registry=opened.registry,
            actor=opened.actor,
            ca=opened.ca,
            activate=activate,
        )
    _emit(ctx, result.to_dict())


@click.command("replace", help=_help("replace"))
@click.argument("old_card_id")
@click.option("--reason", type=click.Choice(["lost", "damaged"]), help=_help("reason"))
@_options
@click.pass_context
def replace_command(
    ctx: click.Context,
    /,
    old_card_id: str,
    reason: Literal["lost", "damaged"] | None,
    holder_path: str | None,
    activate: bool,
    **options: Any,
) -> None:
    from terminal.cli_commands.output import progress
    from terminal.flows.issuance import replace_card

    order = _order(holder_path)
    with _open(ctx, options, keys_needed=True) as opened, progress(ctx, "flow"):
        result = replace_card(
            opened.session,
            order,
            old_card_id,
            registry=opened.registry,
            actor=opened.actor,
            reason=reason,
            ca=opened.ca,
            activate=activate,
        )
    _emit(ctx, result.to_dict())
