"""``sscard emulator ...`` (also ``python -m emulator ...``): the click group.

Commands: ``create`` (card or PSAM image), ``run`` (cards on vpcd slots in
the foreground, with a control socket), ``insert`` / ``remove`` / ``fault``
/ ``status`` (talk to a running ``run`` through its control socket),
``show`` (a card's state, from an image file or a running slot).

Global options come from the root context object when the group is part of
``sscard`` (``ctx.find_root().obj.json``); ``python -m emulator`` has its
own ``--json``.  Errors go to stderr, as the JSON error body with ``--json``
(``error``, ``message`` (Chinese), ``national_code``, ``sw``); exit codes
as in ../shared/spec/interfaces.md (3 when no host runs the slot).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from apdu.errors import SscardError
from card_model.lifecycle import LifeCycle
from emulator._data import load_data, profile_names
from emulator.errors import EmulatorUsageError, FaultSpecError, HostNotRunning, exit_code_for

__all__ = ["emulator_group", "error_body", "main"]

F = TypeVar("F", bound=Callable[..., Any])
_JSON_KEY = "sscard.emulator.json"


# -- output helpers ---------------------------------------------------------------------------


def _json_mode(ctx: click.Context) -> bool:
    if getattr(ctx.find_root().obj, "json", False):
        return True
    return bool(ctx.find_root().meta.get(_JSON_KEY, False))


def _text(key: str, **values: Any) -> str:
    """The Chinese text ``key`` of messages.toml, formatted."""
    row = load_data("messages")[key]
    return str(row["zh"]).format(**values)


def _word(table: str, key: str) -> str:
    return str(load_data("messages")[table][key])


def _emit(ctx: click.Context, payload: dict[str, Any], lines: list[str]) -> None:
    if _json_mode(ctx):
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for line in lines:
            click.echo(line)


def error_body(exc: SscardError) -> dict[str, Any]:
    """The contract's JSON error body (interfaces.md: codes as strings) plus the exit code."""
    body = exc.to_dict()
    body["national_code"] = str(exc.national_code)
    body["exit_code"] = exit_code_for(exc)
    return body


def _fail(ctx: click.Context, exc: SscardError) -> None:
    if _json_mode(ctx):
        click.echo(json.dumps(error_body(exc), ensure_ascii=False), err=True)
    else:
        click.echo(f"错误：{exc.message_zh}（{exc.error_id}，{exc.national_code}）", err=True)
        click.echo(f"error: {exc}", err=True)
    ctx.exit(exit_code_for(exc))


def _handled(fn: F) -> F:
    """Turn sscard errors into the CLI error contract."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except SscardError as exc:
            _fail(ctx, exc)
        return None

    return wrapper  # type: ignore[return-value]


# -- the group ----------------------------------------------------------------------------------


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_root().meta[_JSON_KEY] = True
    return value


@click.group("emulator", help="虚拟社保卡与 PSAM（vpcd 虚拟读卡器）。Virtual cards on vpcd slots.")
@click.option(
    "--json",
    "json_flag",
    is_flag=True,
    expose_value=False,
    callback=_remember_json,
    help="Machine-readable output (one JSON object on stdout; errors as JSON on stderr).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    help="More log output on stderr.",
    callback=lambda _c, _p, v: _configure_logging(v),
)
def emulator_group() -> None:
    """The ``emulator`` command group."""


def _configure_logging(verbosity: int) -> int:
    if verbosity:
        logging.basicConfig(
            level=logging.DEBUG if verbosity > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    return verbosity


_LIFE_CYCLES = [state.label for state in LifeCycle]


@emulator_group.command("create", help="由卡规范与持卡人数据生成卡片映像。Make a card (or PSAM) image.")
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(profile_names()),
    default="gen3",
    show_default=True,
    help="Card profile.",
)
@click.option(
    "--holder",
    "holder_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Holder data TOML (default: the built-in demo holder of the profile).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Image file to write (JSON, mode 0600; holds the card's secrets).",
)
@click.option(
    "--blank", is_flag=True, help="A blank card (issuance state 00: no SM2 key pair, no certificates)."
)
@click.option(
    "--life-cycle",
    "life_cycle",
    type=click.Choice(_LIFE_CYCLES),
    help="Life-cycle state instead of the profile's issued state.",
)
@click.option("--psam", is_flag=True, help="Make a PSAM image (master keys) instead of a card.")
@click.option(
    "--key-set",
    "key_set_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Issuer key set TOML (default: the demo key set, NOT FOR PRODUCTION).",
)
@click.option("--terminal-number", help="PSAM terminal number (12 digits).")
@click.option("--force", is_flag=True, help="Replace an existing image file.")
@click.pass_context
@_handled
def create_command(
    ctx: click.Context,
    profile_name: str,
    holder_path: Path | None,
    out_path: Path,
    blank: bool,
    life_cycle: str | None,
    psam: bool,
    key_set_path: Path | None,
    terminal_number: str | None,
    force: bool,
) -> None:
    from emulator.images import create_card_image, create_psam_image, write_image

    if psam and (holder_path is not None or blank or life_cycle is not None):
        raise EmulatorUsageError("--psam", detail_zh="--psam 不能与 --holder/--blank/--life-cycle 同用")
    if blank and life_cycle is not None:
        raise EmulatorUsageError("--blank", detail_zh="--blank 不能与 --life-cycle 同用")
    if not psam and terminal_number is not None:
        raise EmulatorUsageError("--terminal-number", detail_zh="--terminal-number 仅用于 --psam")
    if psam:
        psam_image = create_psam_image(key_set_path, terminal_number)
        path = write_image(out_path, psam_image, force=force)
        payload: dict[str, Any] = {
            "kind": "psam",
            "path": str(path),
            "terminal_number": psam_image.terminal_number_text,
            "keys": len(psam_image.keys),
        }
        line = _text("created", kind=_word("kind", "psam"), path=path, profile="PSAM", life_cycle="-")
        _emit(ctx, payload, [line])
        return
    state = LifeCycle.from_label(life_cycle) if life_cycle is not None else None
    image = create_card_image(
        profile_name, holder_path, blank=blank, life_cycle=state, key_set_path=key_set_path
    )
    path = write_image(out_path, image, force=force)
    payload = {
        "kind": "card",
        "path": str(path),
        "profile": image.profile,
        "life_cycle": image.life_cycle.label,
        "card_id": image.card_id.hex().upper(),
    }
    line = _text(
        "created",
        kind=_word("kind", "card"),
        path=path,
        profile=image.profile,
        life_cycle=image.life_cycle.text,
    )
    _emit(ctx, payload, [line])


# -- run ------------------------------------------------------------------------------------------


def _run_dir_option(fn: F) -> F:
    return click.option(
        "--control-dir",
        "control_directory",
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory of the control sockets (default: <run dir>/emulator, run dir "
        "$SSCARD_RUN_DIR or /tmp/sscard-pcsc-<uid>).",
    )(fn)


def _slot_lines(statuses: list[dict[str, Any]]) -> list[str]:
    lines = []
    for entry in statuses:
        state = _word("state", "inserted" if entry["inserted"] else "removed")
        kind = entry["kind"] if entry["kind"] != "card" else f"card/{entry['interface']}"
        source = entry["image"] or "demo (内存)"
        lines.append(
            _text("slot_line", slot=entry["slot"], kind=kind, state=state, atr=entry["atr"], source=source)
        )
    return lines


@emulator_group.command(
    "run",
    help="在前台运行虚拟卡，直到 Ctrl+C 或 SIGTERM。Run virtual cards on vpcd slots in the foreground.",
)
@click.option(
    "--slot",
    "slots",
    type=click.IntRange(0, 63),
    multiple=True,
    help="vpcd slot of a card (repeatable; default 0).",
)
@click.option(
    "--image",
    "images",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Card image of the --slot at the same position (repeatable; slots without one get "
    "the built-in demo card, in memory).",
)
@click.option("--psam-slot", type=click.IntRange(0, 63), help="vpcd slot of a PSAM.")
@click.option(
    "--psam-image",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PSAM image (default: the demo PSAM with the demo key set).",
)
@click.option(
    "--generation",
    type=click.Choice(["3", "2", "1"]),
    default="3",
    show_default=True,
    help="Generation of the built-in demo cards.",
)
@click.option("--contactless", is_flag=True, help="Every card presents its contactless interface (ATR, T=1).")
@click.option(
    "--contactless-slot",
    "contactless_slots",
    type=click.IntRange(0, 63),
    multiple=True,
    help="This slot's card presents its contactless interface (repeatable).",
)
@click.option(
    "--no-insert", is_flag=True, help="Start with the cards out of the readers (insert them later)."
)
@click.option(
    "--fault-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML with [[fault]] tables (slot, kind, parameters) armed at start.",
)
@click.option(
    "--pcscd/--no-pcscd",
    "bring_up",
    default=True,
    show_default=True,
    help="Start pcscd with the vpcd readers when none runs (stopped again at exit).",
)
@_run_dir_option
@click.pass_context
@_handled
def run_command(
    ctx: click.Context,
    slots: tuple[int, ...],
    images: tuple[Path, ...],
    psam_slot: int | None,
    psam_image: Path | None,
    generation: str,
    contactless: bool,
    contactless_slots: tuple[int, ...],
    no_insert: bool,
    fault_file: Path | None,
    bring_up: bool,
    control_directory: Path | None,
) -> None:
    from emulator.hosting import HostPlan, run_host

    card_slots = slots or ((0,) if psam_slot is None or psam_slot != 0 else (1,))
    if len(images) > len(card_slots):
        raise EmulatorUsageError("--image", detail_zh="--image 多于 --slot")
    plan = HostPlan(
        cards=tuple(
            (slot, images[index] if index < len(images) else None) for index, slot in enumerate(card_slots)
        ),
        psam_slot=psam_slot,
        psam_image=psam_image,
        generation=int(generation),
        contactless=frozenset(card_slots if contactless else contactless_slots),
        insert=not no_insert,
        fault_file=fault_file,
        bring_up=bring_up,
        control_dir=control_directory,
    )

    def ready(socket_path: Path, statuses: list[dict[str, Any]]) -> None:
        payload = {"pid": os.getpid(), "control_socket": str(socket_path), "slots": statuses}
        _emit(ctx, payload, [_text("running", socket=socket_path), *_slot_lines(statuses)])
        sys.stdout.flush()

    run_host(plan, ready)
    if not _json_mode(ctx):
        click.echo(_text("stopped"))


# -- insert / remove / fault / status / show ----------------------------------------------------------


def _remote(slot: int, message: dict[str, Any], control_directory: Path | None) -> dict[str, Any]:
    from emulator.control import host_for_slot, request

    path = host_for_slot(slot, control_directory)
    try:
        return request(path, {**message, "slot": slot})
    except OSError as exc:
        raise HostNotRunning(
            f"slot {slot} ({type(exc).__name__})", detail_zh=f"槽位 {slot}（控制通道无应答）"
        ) from None


@emulator_group.command("insert", help="向运行中的虚拟卡槽位插卡。Insert a running virtual card.")
@click.option("--slot", type=click.IntRange(0, 63), required=True, help="vpcd slot.")
@_run_dir_option
@click.pass_context
@_handled
def insert_command(ctx: click.Context, slot: int, control_directory: Path | None) -> None:
    answer = _remote(slot, {"op": "insert"}, control_directory)
    _emit(ctx, answer["slot"], [_text("inserted", slot=slot)])


@emulator_group.command("remove", help="从运行中的虚拟卡槽位拔卡。Pull a running virtual card out.")
@click.option("--slot", type=click.IntRange(0, 63), required=True, help="vpcd slot.")
@_run_dir_option
@click.pass_context
@_handled
def remove_command(ctx: click.Context, slot: int, control_directory: Path | None) -> None:
    answer = _remote(slot, {"op": "remove"}, control_directory)
    _emit(ctx, answer["slot"], [_text("removed", slot=slot)])


@emulator_group.command("status", help="列出运行中的虚拟卡。List the running virtual cards.")
@_run_dir_option
@click.pass_context
@_handled
def status_command(ctx: click.Context, control_directory: Path | None) -> None:
    from emulator.control import list_hosts

    hosts = list_hosts(control_directory)
    payload = {
        "hosts": [
            {"pid": status.get("pid"), "control_socket": str(path), "slots": status.get("slots", [])}
            for path, status in hosts
        ]
    }
    lines: list[str] = []
    for path, status in hosts:
        lines.append(f"pid {status.get('pid')}  {path}")
        lines += _slot_lines(status.get("slots", []))
    _emit(ctx, payload, lines or ["没有正在运行的虚拟卡 (no running virtual cards)"])


@emulator_group.command(
    "show", help="显示卡片状态（不含 PIN 与密钥）。Show a card's state (never PINs or keys)."
)
@click.argument("image_path", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--slot", type=click.IntRange(0, 63), help="The card of a running slot instead of a file.")
@_run_dir_option
@click.pass_context
@_handled
def show_command(
    ctx: click.Context, image_path: Path | None, slot: int | None, control_directory: Path | None
) -> None:
    from emulator.summary import image_summary, summary_lines

    if (image_path is None) == (slot is None):
        raise EmulatorUsageError("PATH | --slot", detail_zh="须给出映像文件或 --slot 之一")
    if image_path is not None:
        summary = image_summary(image_path)
        _emit(ctx, summary, summary_lines(summary))
        return
    assert slot is not None
    answer = _remote(slot, {"op": "show"}, control_directory)
    summary = answer["card"]
    payload = {**summary, "slot": answer["slot"]}
    state = _word("state", "inserted" if answer["slot"]["inserted"] else "removed")
    lines = [f"槽位 {slot}  {state}  ATR {answer['slot']['atr']}  APDU {answer['slot']['apdu_count']}"]
    lines += summary_lines(summary) if summary.get("kind") in ("card", "psam") else []
    _emit(ctx, payload, lines)


def _fault_spec(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": kind}
    for name, value in options.items():
        if value is not None:
            spec[name] = value
    return spec


@emulator_group.command(
    "fault",
    help="在运行中的槽位设置一次性故障。Arm a one-shot fault on a running slot. "
    "KIND: tear_before, tear_after, mute, slow, wrong, corrupt, truncate, t0_get_response, t0_wrong_le.",
)
@click.argument("kind", required=False)
@click.option("--slot", type=click.IntRange(0, 63), required=True, help="vpcd slot.")
@click.option("--nth", type=int, help="Fire at the nth matching APDU after arming (default 1 = the next).")
@click.option("--ins", help="Only APDUs with this INS (hex) count.")
@click.option("--between", help="Choose nth in LO-HI with the seed.")
@click.option("--seed", type=int, help="Seed of the random choices (default 0).")
@click.option("--hold", type=float, help="mute: seconds before the connection drops (default 2, max 30).")
@click.option("--delay", type=float, help="slow: seconds before executing (default 0.5, max 30).")
@click.option("--response", help="wrong: the answer to send (hex, default 6F00).")
@click.option("--execute/--no-execute", default=None, help="mute/wrong: run the command first (default yes).")
@click.option("--count", type=int, help="corrupt: bytes to corrupt (default 1).")
@click.option("--keep", type=int, help="truncate: bytes kept (default 1).")
@click.option("--reinsert-after", type=float, help="tear/mute: put the card back after this many seconds.")
@click.option(
    "--file",
    "fault_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Arm the [[fault]] tables of a TOML file instead.",
)
@click.option("--clear", is_flag=True, help="Disarm every fault of the slot.")
@_run_dir_option
@click.pass_context
@_handled
def fault_command(
    ctx: click.Context,
    kind: str | None,
    slot: int,
    nth: int | None,
    ins: str | None,
    between: str | None,
    seed: int | None,
    hold: float | None,
    delay: float | None,
    response: str | None,
    execute: bool | None,
    count: int | None,
    keep: int | None,
    reinsert_after: float | None,
    fault_file: Path | None,
    clear: bool,
    control_directory: Path | None,
) -> None:
    chosen = sum(1 for given in (kind is not None, fault_file is not None, clear) if given)
    if chosen != 1:
        raise EmulatorUsageError("KIND | --file | --clear", detail_zh="须给出 KIND、--file 或 --clear 之一")
    if clear:
        _remote(slot, {"op": "clear_faults"}, control_directory)
        _emit(ctx, {"slot": slot, "armed": []}, [_text("faults_cleared", slot=slot)])
        return
    from emulator.faults import Fault, parse_fault_file

    if fault_file is not None:
        try:
            text = fault_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise FaultSpecError(fault_file.name, detail_zh=f"{fault_file.name} 无法读取") from None
        faults = [fault for _, fault in parse_fault_file(text)]
    else:
        assert kind is not None
        options = {
            "nth": nth,
            "ins": ins,
            "between": between,
            "seed": seed,
            "hold": hold,
            "delay": delay,
            "response": response,
            "execute": execute,
            "count": count,
            "keep": keep,
            "reinsert_after": reinsert_after,
        }
        faults = [Fault.parse(_fault_spec(kind, options))]
    armed = []
    for fault in faults:
        answer = _remote(slot, {"op": "fault", "fault": fault.to_mapping()}, control_directory)
        armed.append(answer["fault"])
    _emit(
        ctx,
        {"slot": slot, "armed": armed},
        [_text("fault_armed", slot=slot, kind=entry["kind"]) for entry in armed],
    )


@emulator_group.command(
    "latency",
    help="测量经 pcscd+vpcd 的单条 APDU 往返时延。Time APDU round trips through pcscd + vpcd.",
)
@click.option(
    "--slot",
    type=click.IntRange(0, 63),
    default=0,
    show_default=True,
    help="A free vpcd slot for the measuring card.",
)
@click.option(
    "--count", type=click.IntRange(10, 1_000_000), default=2000, show_default=True, help="Timed round trips."
)
@click.option("--contactless", is_flag=True, help="Measure the contactless interface (T=1).")
@click.pass_context
@_handled
def latency_command(ctx: click.Context, slot: int, count: int, contactless: bool) -> None:
    from emulator.latency import measure_latency

    result = measure_latency(slot, count=count, interface="contactless" if contactless else "contact")
    _emit(
        ctx,
        result.to_dict(),
        [
            _text("latency", reader=result.reader, count=result.count),
            f"  median {result.median_us:.1f} µs  p99 {result.p99_us:.1f} µs  p10 {result.p10_us:.1f} µs  "
            f"mean {result.mean_us:.1f} µs  min {result.min_us:.1f} µs  max {result.max_us:.1f} µs",
            f"  card OS process() alone: median {result.in_process_median_us:.1f} µs",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator``: run the group standalone; returns the exit code."""
    try:
        result = emulator_group.main(args=argv, prog_name="python -m emulator", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("已中止 (aborted)", err=True)
        return 1
    return result if isinstance(result, int) else 0
