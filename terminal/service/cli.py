"""``sscard serve``: the local service in the foreground.

The root CLI (``terminal/cli.py``) registers :data:`serve_command`; the
command also runs on its own as ``python -m terminal.service``.  Global
options come from the root context object when there is one
(``ctx.find_root().obj``: ``config_path``, ``json``, ``verbose``,
``reader``); the command's own ``--config`` wins over the root's.

At start-up the command prints where the access token file is (never the
token), the API, OpenAPI, national drop-in and kiosk addresses, then serves
until interrupted.  Ctrl+C (SIGINT) and SIGTERM (a service manager stopping
it) both shut down gracefully (running card operations finish, HSM step
sequences are cancelled, the reader watcher stops) and exit 0 after
"the service stopped" on standard error.  A host that is not a loopback
address is refused (exit 2), as is any other bad configuration value or a
port that is taken.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click

from apdu.errors import SscardError
from terminal.service._data import load_data
from terminal.service.config import ServiceConfig, is_loopback_host, load_config
from terminal.service.errors import ServiceConfigError
from terminal.service.responses import error_body
from terminal.service.server import ServiceServer, bind_sockets, configure_logging

__all__ = ["main", "serve_command", "startup_lines", "startup_summary"]

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _root_option(ctx: click.Context, name: str) -> Any:
    return getattr(ctx.find_root().obj, name, None)


def _texts() -> dict[str, str]:
    table: dict[str, str] = load_data("cli")["startup"]
    return table


def startup_summary(config: ServiceConfig, token_file: Path | None) -> dict[str, Any]:
    """What the command prints at start-up (as JSON with ``--json``)."""
    host = config.host if ":" not in config.host.strip("[]") else f"[{config.host.strip('[]')}]"
    base = f"http://{host}:{config.port}"
    return {
        "token_file": str(token_file) if token_file is not None else None,
        "api": f"{base}/api/v1/",
        "openapi": f"{base}/api/v1/openapi.json",
        "events": f"ws://{host}:{config.port}/api/v1/events",
        "national": f"ws://{host}:{config.national_port}"
        if config.national_enabled and config.national_port
        else None,
        "kiosk": f"{base}/kiosk/" if config.kiosk_enabled else None,
        "pin_page": f"{base}/pin/",
        "config": config.source,
    }


def startup_lines(summary: dict[str, Any]) -> list[str]:
    """The human-readable start-up lines (Chinese label / English label: value)."""
    texts = _texts()
    return [
        texts[key].format(value=summary[key])
        for key in ("token_file", "api", "openapi", "events", "national", "kiosk", "pin_page", "config")
        if summary.get(key) is not None
    ] + [texts["stop"]]


class _Terminated(Exception):
    """SIGTERM arrived (re-raised by uvicorn after its graceful shutdown)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _fail(ctx: click.Context, exc: SscardError, code: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(error_body(exc), ensure_ascii=False), err=True)
    else:
        click.echo(f"错误：{exc.message_zh}（{exc.error_id}）", err=True)
        click.echo(f"error: {exc}", err=True)
    ctx.exit(code)


@click.command("serve")
@click.option("--host", default=None, help="Loopback address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Native API port (default 18080).")
@click.option(
    "--national-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="National-interface WebSocket port (default 18081).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (TOML); default $SSCARD_CONFIG.",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    national_port: int | None,
    config_path: Path | None,
) -> None:
    """Run the local service (native API, events, national drop-in, kiosk)."""
    as_json = bool(_root_option(ctx, "json"))
    if host is not None and not is_loopback_host(host):
        _fail(
            ctx,
            ServiceConfigError(f"--host: the service binds to loopback only, not {host[:100]!r}"),
            EXIT_USAGE,
            as_json,
        )
    chosen = config_path if config_path is not None else _root_option(ctx, "config_path")
    try:
        config = load_config(chosen)
        config = config.with_overrides(
            host=host, port=port, national_port=national_port, card_reader=_root_option(ctx, "reader")
        )
        configure_logging(config, verbose=bool(_root_option(ctx, "verbose")))
        bound = bind_sockets(config)
    except ServiceConfigError as exc:
        _fail(ctx, exc, EXIT_USAGE, as_json)
        return
    try:
        server = ServiceServer(bound)
    except SscardError as exc:
        bound.close()
        _fail(ctx, exc, EXIT_USAGE if isinstance(exc, ServiceConfigError) else EXIT_FAILURE, as_json)
        return
    summary = startup_summary(bound.config, server.app.ctx.token.path)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        for line in startup_lines(summary):
            click.echo(line)
    # uvicorn handles SIGINT / SIGTERM while it serves and, after its graceful
    # shutdown, raises the signal again for the handler that was there before:
    # KeyboardInterrupt for SIGINT, _Terminated for SIGTERM (instead of dying by it).
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        server.run()
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(_texts()["stopped"], err=True)


def main() -> None:
    """``python -m terminal.service``."""
    serve_command()
