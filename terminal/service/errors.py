"""Exceptions of the local service, subclasses of the project-wide hierarchy.

Identifiers, national codes and texts are data (``terminal/service/data/errors.toml``,
keyed by class name).  Messages name what was refused (a header, an origin,
a function), never a token, a PIN or personal data.
"""

from __future__ import annotations

from typing import Any

from apdu.errors import NoCardError, SscardError, apply_error_row
from terminal.service._data import load_data

__all__ = [
    "ApiVersionUnsupported",
    "CardBusy",
    "CardWaitTimeout",
    "ClientRefused",
    "FunctionNotSupported",
    "HostRefused",
    "HsmSequenceError",
    "InternalError",
    "NotFound",
    "OriginRefused",
    "PinEntryUnavailable",
    "PinInUrl",
    "PinRateLimited",
    "RequestInvalid",
    "ServiceConfigError",
    "ServiceError",
    "Unauthorized",
]


class _ServiceDefaults:
    """Mixin: class defaults from terminal/service/data/errors.toml."""

    @classmethod
    def _load_defaults(cls) -> None:
        apply_error_row(cls, load_data("errors")["classes"].get(cls.__name__))


class ServiceError(_ServiceDefaults, SscardError):
    """Base of the service's own errors (-1300)."""


class ServiceConfigError(ServiceError):
    """The configuration file or a command-line value is not valid (-1301)."""


class Unauthorized(ServiceError):
    """No bearer token, or the wrong one (HTTP 401)."""


class OriginRefused(ServiceError):
    """The Origin header is not on the allow-list (HTTP 403)."""


class HostRefused(ServiceError):
    """The Host header does not name the loopback service (DNS rebinding; HTTP 403)."""


class ClientRefused(ServiceError):
    """The peer is not on the loopback interface (HTTP 403)."""


class PinRateLimited(ServiceError):
    """Too many PIN attempts on one card (HTTP 429); ``retry_after`` seconds."""

    def __init__(self, message: str = "", *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(0.0, float(retry_after))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": round(self.retry_after, 1)}


class CardBusy(ServiceError):
    """Another operation holds the card longer than the queue wait allows."""


class CardWaitTimeout(_ServiceDefaults, NoCardError):
    """A request that needs a card waited for one in vain (-2)."""


class PinEntryUnavailable(ServiceError):
    """No PIN entry provider can serve the request (-13)."""


class FunctionNotSupported(ServiceError):
    """A national function this terminal does not offer (-13)."""


class HsmSequenceError(ServiceError):
    """An ``_HSM_StepN`` call without the matching earlier step (-14)."""


class RequestInvalid(ServiceError):
    """A request body or message that does not fit the schema (-14)."""


class PinInUrl(ServiceError):
    """A PIN-like query parameter: PINs go in request bodies only (HTTP 400, -14)."""


class ApiVersionUnsupported(ServiceError):
    """The page needs an API version this service does not offer (HTTP 400)."""


class NotFound(ServiceError):
    """No such endpoint (HTTP 404)."""


class InternalError(ServiceError):
    """An unexpected failure inside the service (HTTP 500); details only in the log."""
