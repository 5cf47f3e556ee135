"""`sscard registry ...` and `sscard journal ...` (click groups wired into the root CLI).

Global options come from the root context object: `ctx.obj.json` (print one
JSON object on stdout and nothing else) and `ctx.obj.config_path` (TOML; its
`[registry] url` names the database unless --db or $SSCARD_DB_URL does).
Errors go to stderr (as {"error", "message", "national_code"} with --json);
exit code 10 for refusals by a business rule or the registry, 1 otherwise.
"""

from __future__ import annotations

import csv
import functools
import getpass
import io
import json
import os
import socket
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from terminal.registry import Actor, AgentInfo, NewCard, catalog, open_registry, validation
from terminal.registry.errors import (
    CardAlreadyRegistered,
    HolderNotFound,
    InvalidActor,
    RegistryError,
    RegistryInputError,
)
from terminal.registry.models import CardEvent, CardRecord, Decision, JournalEntry
from terminal.registry.timeutil import iso

if TYPE_CHECKING:  # the database toolkit loads when a command opens the registry, not for --help
    from terminal.registry import Journal, Registry

__all__ = ["journal", "registry"]  # the click groups the root CLI registers

F = TypeVar("F", bound=Callable[..., Any])
_OPENED = "sscard.registry.opened"


# -- context helpers ----------------------------------------------------------


def _json_mode(ctx: click.Context) -> bool:
    return bool(getattr(ctx.find_root().obj, "json", False))


def _config_url(ctx: click.Context) -> str | None:
    path = getattr(ctx.find_root().obj, "config_path", None)
    if not path:
        return None
    try:
        config = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistryInputError(
            f"config file {path}: {type(exc).__name__}", detail_zh=f"配置文件 {path} 无法读取"
        ) from None
    url = config.get("registry", {}).get("url")
    if url is not None and not isinstance(url, str):
        raise RegistryInputError(
            f"config file {path}: [registry] url must be text", detail_zh="配置项 registry.url 须为文本"
        )
    return url


def _open(ctx: click.Context) -> tuple[Registry, Journal]:
    root = ctx.find_root()
    if _OPENED not in root.meta:
        url = ctx.meta.get("sscard.registry.db") or os.environ.get("SSCARD_DB_URL") or _config_url(ctx)
        registry, journal = open_registry(url)
        root.meta[_OPENED] = (registry, journal)
        root.call_on_close(registry.close)
    opened: tuple[Registry, Journal] = root.meta[_OPENED]
    return opened


def _emit(ctx: click.Context, payload: dict[str, Any], lines: list[str]) -> None:
    if _json_mode(ctx):
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for line in lines:
            click.echo(line)


def _handled(fn: F) -> F:
    """Turn registry errors into the CLI error contract."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except RegistryError as exc:
            if _json_mode(ctx):
                click.echo(json.dumps(exc.to_json(), ensure_ascii=False), err=True)
            else:
                click.echo(f"错误：{exc.message_zh}（{exc.error_id}，{exc.national_code}）", err=True)
                click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _db_option(fn: F) -> F:
    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value:
            ctx.meta["sscard.registry.db"] = value
        return value

    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        expose_value=False,
        callback=remember,
        help="Registry database URL (default: $SSCARD_DB_URL, [registry] url in the config, "
        "else registry.db in the data directory).",
    )(fn)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _actor_options(fn: F) -> F:
    options = [
        click.option("--operator", default=_login_name, show_default="login name", help="Operator code."),
        click.option(
            "--terminal", default=socket.gethostname, show_default="host name", help="Terminal code (zdbm)."
        ),
        click.option(
            "--agent-name", help="Agent acting for the holder (with --agent-id, --agent-authorisation)."
        ),
        click.option("--agent-id", help="Agent's identity document number (stored masked)."),
        click.option("--agent-authorisation", help="Reference of the holder's written authorisation."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _actor(kwargs: dict[str, Any]) -> Actor:
    agent_fields = (kwargs.pop("agent_name"), kwargs.pop("agent_id"), kwargs.pop("agent_authorisation"))
    agent = None
    if any(agent_fields):
        if not all(agent_fields):
            raise InvalidActor(
                "--agent-name, --agent-id and --agent-authorisation go together",
                detail_zh="代办人姓名、证件号码和授权书须同时提供",
            )
        agent = AgentInfo(*agent_fields)
    return Actor(operator=kwargs.pop("operator"), terminal=kwargs.pop("terminal"), agent=agent)


def _new_card_options(fn: F) -> F:
    options = [
        click.option("--new-card-id", required=True, help="Identification code of the new card (32 hex)."),
        click.option("--card-number", required=True, help="Card number of the new card, e.g. X00000020."),
        click.option("--generation", type=int, default=3, show_default=True),
        click.option("--issue-date", required=True, help="YYYY-MM-DD"),
        click.option("--expiry-date", required=True, help="YYYY-MM-DD"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _new_card(kwargs: dict[str, Any]) -> NewCard:
    return NewCard(
        card_id=kwargs.pop("new_card_id"),
        card_number=kwargs.pop("card_number"),
        generation=kwargs.pop("generation"),
        issue_date=kwargs.pop("issue_date"),
        expiry_date=kwargs.pop("expiry_date"),
    )


# -- text renderings ----------------------------------------------------------


def _card_lines(card: CardRecord) -> list[str]:
    data = card.to_json()
    lines = [
        f"卡识别码 card id      {card.card_id}",
        f"卡号 card number      {card.card_number}",
        f"持卡人 holder         {card.holder_name} {card.ssn_masked}",
        f"代别 generation       {card.generation}",
        f"银行 bank             {data['bank_name']} ({card.bank})",
        f"有效期 validity       {card.issue_date} .. {card.expiry_date}",
        f"状态 status           {data['status_text']} ({card.effective_status})",
        f"自 since              {iso(card.status_since)}",
    ]
    if card.temp_loss_until:
        lines.append(f"临时挂失至 until      {iso(card.temp_loss_until)}")
    if card.medical_ended_at:
        lines.append(f"医保结算停止 medical   ended {iso(card.medical_ended_at)} by {card.medical_ended_by}")
    if card.replaces:
        lines.append(f"替代 replaces         {card.replaces}")
    if card.replaced_by:
        lines.append(f"被替代 replaced by    {card.replaced_by}")
    return lines


def _decision_lines(decision: Decision) -> list[str]:
    verdict = "允许 allowed" if decision.allowed else "拒绝 refused"
    lines = [f"受理 decision         {verdict}: {decision.message_zh} ({decision.reason_id})"]
    if decision.suspended:
        names = ", ".join(catalog.functions()[f].zh for f in sorted(decision.suspended))
        lines.append(f"暂停功能 suspended    {names}")
    if decision.block_on_card:
        lines.append("卡上锁定 block        应用须在卡上锁定 / block the application on the card")
    return lines


def _event_line(event: CardEvent) -> str:
    agent = f" agent {event.agent}" if event.agent else ""
    related = f" -> {event.related_card_id}" if event.related_card_id else ""
    label = catalog.operation_label(event.event).zh
    return (
        f"{event.id:>6} {iso(event.at)} {label}({event.event}) {event.from_status or '-'} => "
        f"{event.to_status}{related} by {event.operator}@{event.terminal}{agent}"
    )


def _entry_line(entry: JournalEntry) -> str:
    outcome = entry.result or "-"
    if entry.national_code:
        outcome += f" {entry.national_code}"
    card = entry.card_id or "-"
    return (
        f"{entry.id:>6} {iso(entry.begun_at)} {entry.operation} {card} "
        f"{entry.terminal}/{entry.operator} {entry.state} {outcome}"
    )


# -- sscard registry ------------------------------------------------------------


@click.group("registry", help="卡状态登记库：查询、挂失、解挂、补换、注销、更换银行。Card status registry.")
@_db_option
def registry() -> None:
    """Card status registry."""


def _card_command(name: str, help_text: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        wrapped: Callable[..., Any] = click.pass_context(
            _db_option(click.argument("card_id")(_actor_options(_handled(fn))))
        )
        return registry.command(name, help=help_text)(wrapped)  # type: ignore[return-value]

    return decorate


def _show_change(ctx: click.Context, card: CardRecord, what: str) -> None:
    _emit(ctx, {"card": card.to_json()}, [f"{what}: {card.card_id}", *_card_lines(card)])


@registry.command("show", help="显示卡状态与受理结论。Show a card's status and what a terminal must do.")
@click.argument("card_id")
@_db_option
@click.pass_context
@_handled
def show(ctx: click.Context, /, card_id: str) -> None:
    reg, _ = _open(ctx)
    card = reg.card(card_id)
    decision = reg.check_presented(card_id)
    _emit(
        ctx,
        {"card": card.to_json(), "decision": decision.to_json()},
        [*_card_lines(card), *_decision_lines(decision)],
    )


@registry.command("check", help="刷卡受理检查。What a terminal must do with a presented card.")
@click.argument("card_id")
@_db_option
@click.pass_context
@_handled
def check(ctx: click.Context, /, card_id: str) -> None:
    reg, _ = _open(ctx)
    decision = reg.check_presented(card_id)
    _emit(ctx, {"decision": decision.to_json()}, _decision_lines(decision))


@registry.command("history", help="卡状态变更历史。Status history of a card.")
@click.argument("card_id")
@_db_option
@click.pass_context
@_handled
def history(ctx: click.Context, /, card_id: str) -> None:
    reg, _ = _open(ctx)
    events = reg.history(card_id)
    _emit(
        ctx,
        {"card_id": events[0].card_id if events else card_id, "events": [e.to_json() for e in events]},
        [_event_line(e) for e in events],
    )


@registry.command(
    "register", help="登记持卡人与卡片（持卡人信息TOML同 emulator create --holder）。Register a card."
)
@click.argument("holder_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--card-id", required=True, help="Card identification code (32 hex).")
@click.option("--generation", type=int, default=3, show_default=True)
@click.option("--active", is_flag=True, help="Register the card as already activated.")
@_actor_options
@_db_option
@click.pass_context
@_handled
def register(
    ctx: click.Context, /, holder_file: Path, card_id: str, generation: int, active: bool, **kwargs: Any
) -> None:
    actor = _actor(kwargs)
    try:
        data = tomllib.loads(holder_file.read_text("utf-8"))
        holder, card = data["holder"], data["card"]
        ssn, name = holder["ssn"], holder["name"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise RegistryInputError(
            f"{holder_file}: needs [holder] ssn, name and [card] ({type(exc).__name__})",
            detail_zh=f"{holder_file} 须含 [holder] ssn、name 与 [card]",
        ) from None
    # Check the card before writing the holder, so that a bad card writes nothing.
    cid = validation.card_id(card_id)
    validation.card_number(card.get("card_number"))
    validation.generation(generation)
    bank = validation.bank(card.get("bank")).code
    validation.validity(card.get("issue_date"), card.get("expiry_date"))
    reg, _ = _open(ctx)
    if reg.exists(cid):
        raise CardAlreadyRegistered(card_id=cid)
    try:
        reg.holder(ssn)
    except HolderNotFound:
        reg.register_holder(
            ssn, name, gender=holder.get("gender"), birth_date=holder.get("birth_date"), actor=actor
        )
    record = reg.register_card(
        cid,
        card["card_number"],
        ssn,
        generation,
        bank,
        card["issue_date"],
        card["expiry_date"],
        "active" if active else "issued",
        actor=actor,
    )
    _show_change(ctx, record, "已登记 registered")


@_card_command("activate", "启用卡片（代办人可办理）。Activate a card.")
def activate(ctx: click.Context, /, card_id: str, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    _show_change(ctx, reg.activate(card_id, _actor(kwargs)), "已启用 activated")


@_card_command("report-loss", "挂失：默认临时挂失（15天后自动解除），--formal 正式挂失。Report a card lost.")
@click.option("--formal", is_flag=True, help="Formal loss report (正式挂失) instead of a temporary one.")
def report_loss(ctx: click.Context, /, card_id: str, formal: bool, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    actor = _actor(kwargs)
    if formal:
        _show_change(ctx, reg.report_loss_formal(card_id, actor), "已正式挂失 formally reported lost")
    else:
        _show_change(ctx, reg.report_loss_temporary(card_id, actor), "已临时挂失 temporarily reported lost")


@_card_command("release", "解除挂失（已补换的卡不能解挂）。Release a loss report.")
def release(ctx: click.Context, /, card_id: str, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    _show_change(ctx, reg.release_loss(card_id, _actor(kwargs)), "已解挂 released")


@_card_command("replace", "补换卡：旧卡作废，登记新卡。Replace a card; prints the new card.")
@_new_card_options
def replace(ctx: click.Context, /, card_id: str, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    new = _new_card(kwargs)
    _show_change(ctx, reg.replace(card_id, new, _actor(kwargs)), "已补换 replaced, new card")


@_card_command("cancel", "注销：默认注销社保功能，--financial 注销金融账户（须先注销社保功能）。Cancel.")
@click.option(
    "--financial", is_flag=True, help="Cancel the financial account (after the social-security function)."
)
def cancel(ctx: click.Context, /, card_id: str, financial: bool, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    actor = _actor(kwargs)
    if financial:
        _show_change(ctx, reg.cancel_financial(card_id, actor), "已注销金融账户 financial account cancelled")
    else:
        _show_change(
            ctx, reg.cancel_social_security(card_id, actor), "已注销社保功能 social security cancelled"
        )


@_card_command(
    "change-bank", "更换合作银行：旧卡注销并登记新卡（6个月内不能再次更换）。Change the partner bank."
)
@click.option("--bank", "new_bank", required=True, help="New partner bank (code or name).")
@_new_card_options
def change_bank(ctx: click.Context, /, card_id: str, new_bank: str, **kwargs: Any) -> None:
    reg, _ = _open(ctx)
    new = _new_card(kwargs)
    _show_change(
        ctx, reg.change_bank(card_id, new_bank, new, _actor(kwargs)), "已更换银行 bank changed, new card"
    )


# -- sscard journal -------------------------------------------------------------


def _filter_options(fn: F) -> F:
    options = [
        click.option("--card", "card_id", help="Card identification code."),
        click.option("--terminal", help="Terminal code."),
        click.option("--operation", help="Operation name, e.g. registry.release_loss."),
        click.option("--since", help="From this ISO date/time (UTC) on."),
        click.option("--until", help="Before this ISO time; a bare date includes that whole day (UTC)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group("journal", help="操作日志：查询与导出。Audit journal of card operations.")
@_db_option
def journal() -> None:
    """Audit journal."""


@journal.command("list", help="列出日志记录。List journal entries.")
@_filter_options
@click.option("--incomplete", is_flag=True, help="Only entries begun but never completed or resolved.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many entries.")
@_db_option
@click.pass_context
@_handled
def list_entries(ctx: click.Context, /, incomplete: bool, limit: int | None, **filters: Any) -> None:
    _, jour = _open(ctx)
    entries = jour.query(**filters, incomplete=incomplete, limit=limit)
    _emit(
        ctx,
        {"count": len(entries), "entries": [e.to_json() for e in entries]},
        [_entry_line(e) for e in entries],
    )


@journal.command("show", help="显示一条日志记录。Show one journal entry.")
@click.argument("entry_id", type=click.IntRange(min=1))
@_db_option
@click.pass_context
@_handled
def show_entry(ctx: click.Context, /, entry_id: int) -> None:
    _, jour = _open(ctx)
    entry = jour.entry(entry_id)
    data = entry.to_json()
    _emit(
        ctx,
        {"entry": data},
        [
            f"{k:<16} {json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v}"
            for k, v in data.items()
        ],
    )


@journal.command("export", help="导出日志（CSV 或 JSON）。Export journal entries.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True)
@_filter_options
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout."
)
@_db_option
@click.pass_context
@_handled
def export(ctx: click.Context, /, fmt: str, out: Path | None, **filters: Any) -> None:
    _, jour = _open(ctx)
    text = jour.export(fmt, **filters)
    if out is not None:
        out.write_text(text, encoding="utf-8", newline="")
        count = (
            len(json.loads(text)["entries"])
            if fmt == "json"
            else len(list(csv.reader(io.StringIO(text)))) - 1
        )
        _emit(ctx, {"written": str(out), "format": fmt, "count": count}, [f"已导出 exported {count} → {out}"])
    elif _json_mode(ctx) and fmt == "csv":
        click.echo(json.dumps({"format": "csv", "content": text}, ensure_ascii=False))
    else:
        sys.stdout.write(text)


@journal.command("resolve", help="处理未完成或中断的日志记录。Resolve an incomplete entry.")
@click.argument("entry_id", type=click.IntRange(min=1))
@click.option("--resolution", required=True, help="How it was resolved, e.g. card_checked.")
@click.option("--result", type=click.Choice(["ok", "failed", "refused"]), required=True)
@click.option("--note", required=True)
@_db_option
@click.pass_context
@_handled
def resolve(ctx: click.Context, /, entry_id: int, resolution: str, result: str, note: str) -> None:
    _, jour = _open(ctx)
    entry = jour.resolve(entry_id, resolution=resolution, result=result, note=note)
    _emit(ctx, {"entry": entry.to_json()}, [_entry_line(entry)])
