"""Types of the service test fixtures, importable by the test modules
(``conftest`` is not: when several test areas run in one pytest process, the
name ``conftest`` may be another area's module)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from service_cards import auth

with warnings.catch_warnings():
    # starlette.testclient warns that it prefers another HTTP client package; it works as is.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from emulator.vpcd import VirtualCard, VpcdLink
from terminal.journal_hook import MemoryJournal
from terminal.service.app import ServiceApp
from terminal.service.config import ServiceConfig
from terminal.service.pinentry import ScriptedPinEntry

__all__ = ["Insert", "MakeService", "Service"]

Insert = Callable[[VirtualCard], AbstractContextManager[VpcdLink]]


@dataclass
class Service:
    """One service instance under test, with an entered TestClient."""

    config: ServiceConfig
    app: ServiceApp
    client: TestClient
    pins: ScriptedPinEntry
    journal: MemoryJournal
    extra: dict[str, Any] = field(default_factory=dict)

    def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        headers = {**auth(), **kwargs.pop("headers", {})}
        return self.client.post(
            f"/api/v1{path}", json=body if body is not None else {}, headers=headers, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        headers = {**auth(), **kwargs.pop("headers", {})}
        return self.client.get(f"/api/v1{path}", headers=headers, **kwargs)


MakeService = Callable[..., Service]
