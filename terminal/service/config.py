"""The service configuration: a TOML file over the defaults in
``terminal/service/data/defaults.toml``.

Sections ``[service]`` (host, ports, web origins, token and log files, waits),
``[readers]``, ``[key_source]``, ``[terminal]`` (zdbm, terminal and device
numbers, trust anchors), ``[pin]`` (entry provider, rate limits),
``[journal]`` and ``[kiosk]``.  Every key is checked against the type of its
default; unknown keys, a non-loopback host, bad ports or origins raise
:class:`~terminal.service.errors.ServiceConfigError` naming the key.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from terminal.service._data import load_data
from terminal.service.errors import ServiceConfigError

__all__ = [
    "KEY_SOURCE_KINDS",
    "PIN_ENTRY_KINDS",
    "ServiceConfig",
    "config_from_mapping",
    "data_dir",
    "is_loopback_host",
    "load_config",
    "normalize_origin",
]

KEY_SOURCE_KINDS = ("psam", "hsm", "dev_key_file", "software_hsm", "none")
PIN_ENTRY_KINDS = ("auto", "pinpad", "page")
JOURNAL_KINDS = ("none", "registry")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def data_dir() -> Path:
    """``$SSCARD_DATA_DIR``, else the user data directory of sscard."""
    base = os.environ.get("SSCARD_DATA_DIR") or platformdirs.user_data_dir("sscard")
    return Path(base)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (with or without brackets)."""
    text = host.strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case with default ports dropped; ``null`` as is.
    A value with a path, query, user or another scheme raises ServiceConfigError."""
    text = origin.strip()
    if text == "null":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceConfigError(f"origin {origin!r}: scheme://host[:port] expected")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ServiceConfigError(f"origin {origin!r}: only scheme, host and port are allowed")
    try:
        port = parts.port
    except ValueError:
        raise ServiceConfigError(f"origin {origin!r}: bad port") from None
    default = 80 if parts.scheme == "http" else 443
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The effective configuration (see defaults.toml for each key's meaning)."""

    host: str
    port: int
    national_port: int
    national_enabled: bool
    origins: tuple[str, ...]
    token_file: Path
    log_file: Path | None
    log_level: str
    card_wait_seconds: float
    card_wait_max_seconds: float
    national_card_wait_seconds: float
    queue_wait_seconds: float
    hsm_step_timeout_seconds: float
    card_answer_timeout_seconds: float
    card_reader: str
    psam_reader: str
    kiosk_reader: str
    key_source: str
    key_path: Path | None
    hsm_command: str
    zdbm: str
    terminal_number: str
    device_number: str
    trust_anchors: tuple[Path, ...]
    pin_entry: str
    pin_entry_timeout_seconds: float
    pin_attempts_per_window: int
    pin_window_seconds: float
    pin_failure_delay_seconds: float
    journal: str
    operator: str
    kiosk_enabled: bool
    kiosk_idle_timeout_seconds: float
    kiosk_poll_ms: int
    kiosk_message_seconds: float
    source: str = "<defaults>"

    def with_ports(self, *, port: int | None = None, national_port: int | None = None) -> ServiceConfig:
        """A copy with the listening ports replaced (e.g. by ports bound as 0)."""
        return replace(
            self,
            port=self.port if port is None else port,
            national_port=self.national_port if national_port is None else national_port,
        )

    def with_overrides(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        national_port: int | None = None,
        card_reader: str | None = None,
    ) -> ServiceConfig:
        """A copy with command-line values applied (checked as the file's values)."""
        new_host = self.host if host is None else host.strip()
        if not is_loopback_host(new_host):
            raise ServiceConfigError(f"--host: the service binds to loopback only, not {new_host[:100]!r}")
        new_port = self.port if port is None else _port("--port", port, allow_zero=True)
        new_national = (
            self.national_port
            if national_port is None
            else _port("--national-port", national_port, allow_zero=True)
        )
        if new_port and new_national and new_port == new_national and self.national_enabled:
            raise ServiceConfigError("--national-port: must differ from the native port")
        reader = self.card_reader if card_reader is None else card_reader.strip()
        return replace(
            self,
            host=new_host,
            port=new_port,
            national_port=new_national,
            card_reader=reader,
            kiosk_reader=self.kiosk_reader
            if card_reader is None or self.kiosk_reader != self.card_reader
            else reader,
        )

    @property
    def own_origins(self) -> tuple[str, ...]:
        """The service's own web origins (its pages: PIN page, kiosk)."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        host = self.host.strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            names.append(f"[{host}]" if ":" in host else host)
        return tuple(f"http://{name}:{self.port}" for name in names)

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(self.origins) | frozenset(self.own_origins)

    def public_dict(self) -> dict[str, Any]:
        """What the health endpoint shows (no paths of secrets)."""
        return {
            "host": self.host,
            "port": self.port,
            "national_port": self.national_port if self.national_enabled else None,
            "origins": list(self.origins),
            "key_source": self.key_source,
            "pin_entry": self.pin_entry,
            "zdbm": self.zdbm,
            "terminal_number": self.terminal_number,
            "device_number": self.device_number,
            "kiosk": self.kiosk_enabled,
        }


def _defaults() -> dict[str, dict[str, Any]]:
    return load_data("defaults")


def _merge(doc: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    defaults = _defaults()
    merged: dict[str, dict[str, Any]] = {name: dict(table) for name, table in defaults.items()}
    for section, table in doc.items():
        if section not in defaults:
            raise ServiceConfigError(f"{source}: unknown section [{section}]")
        if not isinstance(table, Mapping):
            raise ServiceConfigError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            if key not in defaults[section]:
                raise ServiceConfigError(f"{source}: unknown key {section}.{key}")
            merged[section][key] = _typed(f"{section}.{key}", defaults[section][key], value)
    return merged


def _typed(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ServiceConfigError(f"{name}: true or false expected")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ServiceConfigError(f"{name}: an integer expected")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ServiceConfigError(f"{name}: a number expected")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ServiceConfigError(f"{name}: text expected")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ServiceConfigError(f"{name}: a list of texts expected")
        return list(value)
    raise ServiceConfigError(f"{name}: unsupported value")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ServiceConfigError(f"{name}: one of {', '.join(choices)} expected")
    return value


def _port(name: str, value: int, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ServiceConfigError(f"{name}: a TCP port {low}..65535 expected")
    return value


def _seconds(name: str, value: float, *, allow_zero: bool = True) -> float:
    if value < 0 or (value == 0 and not allow_zero) or value > 3600:
        raise ServiceConfigError(f"{name}: seconds in 0..3600 expected")
    return value


def _check_hsm_command(command: str) -> None:
    """``key_source.hsm_command`` must name a program (split as a shell would, no shell)."""
    if not command:
        raise ServiceConfigError("key_source.hsm_command: required for kind hsm")
    try:
        argv = shlex.split(command)
    except ValueError:
        raise ServiceConfigError("key_source.hsm_command: unbalanced quotes") from None
    if not argv:
        raise ServiceConfigError("key_source.hsm_command: required for kind hsm")


def _path(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def config_from_mapping(doc: Mapping[str, Any], *, source: str = "<mapping>") -> ServiceConfig:
    """Build and check the configuration from a parsed TOML document."""
    m = _merge(doc, source)
    svc, readers, keys, term, pin, journal, kiosk = (
        m["service"],
        m["readers"],
        m["key_source"],
        m["terminal"],
        m["pin"],
        m["journal"],
        m["kiosk"],
    )
    host = str(svc["host"]).strip()
    if not is_loopback_host(host):
        raise ServiceConfigError(f"service.host: the service binds to loopback only, not {host!r}")
    port = _port("service.port", svc["port"], allow_zero=True)
    national = _port("service.national_port", svc["national_port"], allow_zero=True)
    if port and national and port == national and svc["national"]:
        raise ServiceConfigError("service.national_port: must differ from service.port")
    origins = tuple(dict.fromkeys(normalize_origin(o) for o in svc["origins"]))
    kind = _choice("key_source.kind", keys["kind"], KEY_SOURCE_KINDS)
    key_path = _path(keys["path"])
    if kind in ("dev_key_file", "software_hsm") and key_path is None:
        raise ServiceConfigError(f"key_source.path: required for kind {kind}")
    hsm_command = keys["hsm_command"].strip()
    if kind == "hsm":
        _check_hsm_command(hsm_command)
    attempts = pin["attempts_per_window"]
    if not 1 <= attempts <= 1000:
        raise ServiceConfigError("pin.attempts_per_window: 1..1000 expected")
    poll = kiosk["poll_ms"]
    if not 50 <= poll <= 10000:
        raise ServiceConfigError("kiosk.poll_ms: 50..10000 expected")
    token = _path(svc["token_file"]) or data_dir() / "service" / "token"
    return ServiceConfig(
        host=host,
        port=port,
        national_port=national,
        national_enabled=bool(svc["national"]),
        origins=origins,
        token_file=token,
        log_file=_path(svc["log_file"]),
        log_level=_choice("service.log_level", str(svc["log_level"]).upper(), LOG_LEVELS),
        card_wait_seconds=_seconds("service.card_wait_seconds", svc["card_wait_seconds"]),
        card_wait_max_seconds=_seconds("service.card_wait_max_seconds", svc["card_wait_max_seconds"]),
        national_card_wait_seconds=_seconds(
            "service.national_card_wait_seconds", svc["national_card_wait_seconds"]
        ),
        queue_wait_seconds=_seconds("service.queue_wait_seconds", svc["queue_wait_seconds"]),
        hsm_step_timeout_seconds=_seconds(
            "service.hsm_step_timeout_seconds", svc["hsm_step_timeout_seconds"], allow_zero=False
        ),
        card_answer_timeout_seconds=_seconds(
            "service.card_answer_timeout_seconds", svc["card_answer_timeout_seconds"]
        ),
        card_reader=readers["card"].strip(),
        psam_reader=readers["psam"].strip(),
        kiosk_reader=readers["kiosk"].strip() or readers["card"].strip(),
        key_source=kind,
        key_path=key_path,
        hsm_command=hsm_command,
        zdbm=term["zdbm"].strip(),
        terminal_number=term["terminal_number"].strip(),
        device_number=term["device_number"].strip(),
        trust_anchors=tuple(Path(p).expanduser() for p in term["trust_anchors"]),
        pin_entry=_choice("pin.entry", pin["entry"], PIN_ENTRY_KINDS),
        pin_entry_timeout_seconds=_seconds(
            "pin.entry_timeout_seconds", pin["entry_timeout_seconds"], allow_zero=False
        ),
        pin_attempts_per_window=attempts,
        pin_window_seconds=_seconds("pin.window_seconds", pin["window_seconds"], allow_zero=False),
        pin_failure_delay_seconds=_seconds("pin.failure_delay_seconds", pin["failure_delay_seconds"]),
        journal=_choice("journal.kind", journal["kind"], JOURNAL_KINDS),
        operator=journal["operator"].strip() or "service",
        kiosk_enabled=kiosk["enabled"],
        kiosk_idle_timeout_seconds=_seconds(
            "kiosk.idle_timeout_seconds", kiosk["idle_timeout_seconds"], allow_zero=False
        ),
        kiosk_poll_ms=poll,
        kiosk_message_seconds=_seconds("kiosk.message_seconds", kiosk["message_seconds"]),
        source=source,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> ServiceConfig:
    """The configuration from ``path``, else ``$SSCARD_CONFIG``, else the defaults.

    A file that does not exist, is not TOML or holds a bad value raises
    :class:`ServiceConfigError`.  A configuration file shared with other sscard
    commands may hold other top-level tables; only the service's sections are
    read when the file has a ``[serve]`` table (``[serve.service]`` ...)."""
    chosen = path if path is not None else (os.environ.get("SSCARD_CONFIG") or None)
    if chosen is None:
        return config_from_mapping({}, source="<defaults>")
    file = Path(chosen).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceConfigError(f"{file}: cannot read the configuration ({exc.strerror})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ServiceConfigError(f"{file}: not valid TOML ({exc})") from None
    if "serve" in doc:
        section = doc["serve"]
        if not isinstance(section, Mapping):
            raise ServiceConfigError(f"{file}: [serve] must be a table")
        doc = dict(section)
    return config_from_mapping(doc, source=str(file))
