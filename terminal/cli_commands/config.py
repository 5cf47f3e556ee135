"""The CLI's configuration: the ``[cli]`` table of the configuration file.

The file is the one ``--config`` / ``$SSCARD_CONFIG`` names, shared with the
other commands (``[registry] url`` for the registry and the journal,
``[serve]`` for the service).  Defaults and allowed values are data
(``terminal/data/cli.toml`` ``[config]`` / ``[config_choices]``); an unknown
key, a value of the wrong type or an unknown choice raises
:class:`~terminal.cli_commands.errors.CliConfigError` (exit 2) naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal._data import load_data
from terminal.cli_commands.errors import CliConfigError

__all__ = ["CliSettings", "load_settings", "settings_from_mapping"]


@dataclass(frozen=True, slots=True)
class CliSettings:
    """The effective ``[cli]`` settings (see terminal/data/cli.toml for each key)."""

    reader: str
    itype: int
    psam_reader: str
    key_source: str
    key_file: str
    hsm_command: str
    trust_anchors: tuple[str, ...]
    terminal_number: str
    device_number: str
    journal: str
    operator: str
    terminal: str
    registry_url: str | None = None
    source: str = "<defaults>"


def _defaults() -> dict[str, Any]:
    table: dict[str, Any] = load_data("cli")["config"]
    return table


def _typed(name: str, default: Any, value: Any, source: str) -> Any:
    if isinstance(default, str):
        if not isinstance(value, str):
            raise CliConfigError(
                f"{source}: cli.{name} must be text", message_zh=f"配置项 cli.{name} 须为文本"
            )
        return value.strip()
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            raise CliConfigError(
                f"{source}: cli.{name} must be a number", message_zh=f"配置项 cli.{name} 须为数字"
            )
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise CliConfigError(
                f"{source}: cli.{name} must be a list of texts", message_zh=f"配置项 cli.{name} 须为文本列表"
            )
        return tuple(value)
    raise CliConfigError(f"{source}: cli.{name} has an unsupported default")


def settings_from_mapping(doc: Mapping[str, Any], *, source: str = "<mapping>") -> CliSettings:
    """Check the ``[cli]`` table (and ``[registry] url``) of a parsed TOML document."""
    table = doc.get("cli", {})
    if not isinstance(table, Mapping):
        raise CliConfigError(f"{source}: [cli] must be a table", message_zh="配置项 [cli] 须为表")
    defaults = _defaults()
    values: dict[str, Any] = {
        name: (tuple(default) if isinstance(default, list) else default) for name, default in defaults.items()
    }
    for name, value in table.items():
        if name not in defaults:
            raise CliConfigError(f"{source}: unknown key cli.{name}", message_zh=f"未知配置项 cli.{name}")
        values[name] = _typed(name, defaults[name], value, source)
    choices: dict[str, list[str | int]] = load_data("cli")["config_choices"]
    for name, allowed in choices.items():
        if values[name] not in allowed:
            listed = [str(choice) for choice in allowed]
            raise CliConfigError(
                f"{source}: cli.{name} must be one of {', '.join(listed)}",
                message_zh=f"配置项 cli.{name} 须为 {'、'.join(listed)} 之一",
            )
    registry = doc.get("registry", {})
    url = registry.get("url") if isinstance(registry, Mapping) else None
    if url is not None and not isinstance(url, str):
        raise CliConfigError(
            f"{source}: registry.url must be text", message_zh="配置项 registry.url 须为文本"
        )
    return CliSettings(**values, registry_url=url or None, source=source)


def load_settings(path: str | Path | None) -> CliSettings:
    """The settings of the configuration file ``path`` (None: the defaults)."""
    if path is None:
        return settings_from_mapping({}, source="<defaults>")
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise CliConfigError(
            f"{file}: cannot read the configuration ({reason})", message_zh=f"无法读取配置文件 {file}"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliConfigError(
            f"{file}: not valid TOML ({exc})", message_zh=f"配置文件 {file} 不是有效的TOML"
        ) from None
    return settings_from_mapping(doc, source=str(file))
