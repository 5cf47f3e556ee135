"""Running the service: loopback sockets for both ports, one uvicorn server.

:func:`bind_sockets` binds the native port and the national port (0 picks a
free port) on the configured loopback host; :func:`configure_logging` sends
the ``sscard`` and ``uvicorn`` loggers to standard error and, when
configured, to the log file; :class:`ServiceServer` runs uvicorn over the
bound sockets, in the foreground (``sscard serve``) or in a background
thread (tests, embedding).  Both ports are served by the same
:class:`~terminal.service.app.ServiceApp`, which tells them apart by the
local port of each connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from terminal.service.app import ServiceApp, create_app
from terminal.service.config import ServiceConfig, is_loopback_host
from terminal.service.errors import ServiceConfigError

__all__ = ["BoundSockets", "ServiceServer", "bind_sockets", "configure_logging"]

log = logging.getLogger("sscard.service")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
START_TIMEOUT = 20.0


@dataclass
class BoundSockets:
    """The listening sockets and the configuration with the ports they got."""

    config: ServiceConfig
    sockets: list[socket.socket]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _bind_address(host: str) -> tuple[socket.AddressFamily, str]:
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return socket.AF_INET, "127.0.0.1"
    return (socket.AF_INET6 if ":" in text else socket.AF_INET), text


def _listen(family: socket.AddressFamily, address: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such sockets' connections;
    # without it, Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise ServiceConfigError(f"cannot listen on {address} port {port} ({exc.strerror})") from None
    return sock


def bind_sockets(config: ServiceConfig) -> BoundSockets:
    """Listen on the native port and, unless ``service.national = false``, the national port.

    A port of 0 gets a free port; the returned configuration holds the real
    ports (the security checks compare the Host header with them; a national
    port of 0 there means the drop-in is off)."""
    if not is_loopback_host(config.host):
        raise ServiceConfigError(f"service.host: the service binds to loopback only, not {config.host!r}")
    family, address = _bind_address(config.host)
    native = _listen(family, address, config.port)
    sockets = [native]
    port = int(native.getsockname()[1])
    national_port = 0
    if config.national_enabled:
        try:
            national = _listen(family, address, config.national_port)
        except ServiceConfigError:
            native.close()
            raise
        sockets.append(national)
        national_port = int(national.getsockname()[1])
    return BoundSockets(config.with_ports(port=port, national_port=national_port), sockets)


def configure_logging(config: ServiceConfig, *, verbose: bool = False) -> None:
    """Log to standard error (and the configured file) at the configured level."""
    level = logging.DEBUG if verbose else getattr(logging, config.log_level)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if config.log_file is not None:
        path = Path(config.log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(path, encoding="utf-8"))
        except OSError as exc:
            raise ServiceConfigError(f"service.log_file: cannot open {path} ({exc.strerror})") from None
    formatter = logging.Formatter(LOG_FORMAT)
    for name in ("sscard", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = False
        logger.setLevel(level)
    for handler in handlers:
        handler.setFormatter(formatter)
        logging.getLogger("sscard").addHandler(handler)
        logging.getLogger("uvicorn").addHandler(handler)


class ServiceServer:
    """uvicorn over :func:`bind_sockets`; ``app`` is created for the bound ports
    unless given (tests pass an app built with their own backend)."""

    def __init__(self, bound: BoundSockets, app: ServiceApp | None = None) -> None:
        self.bound = bound
        self.config = bound.config
        self.app = app if app is not None else create_app(bound.config)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                lifespan="on",
                log_config=None,
                access_log=False,
                ws="auto",
                ws_max_size=65536,
                timeout_graceful_shutdown=5,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self) -> None:
        """Serve in the foreground until interrupted (SIGINT / SIGTERM)."""
        try:
            asyncio.run(self._server.serve(sockets=self.bound.sockets))
        finally:
            self.bound.close()

    def start(self) -> ServiceServer:
        """Serve in a background thread; returns when the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="sscard-service", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServiceConfigError("the service did not start (see the log)")
            if time.monotonic() >= deadline:
                self.stop()
                raise ServiceConfigError("the service did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to finish and wait for the thread."""
        self._server.should_exit = True
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=15)

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
