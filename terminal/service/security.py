"""Security of a local service, as one ASGI middleware in front of everything.

Every HTTP request and WebSocket handshake, on both ports, passes four checks
before any route sees it:

1. **Peer**: the TCP peer must be a loopback address (the listener binds to
   loopback only; this refuses anything a misconfigured proxy forwards).
2. **Host** (DNS rebinding): the ``Host`` header must name the loopback
   service: ``127.0.0.1``, ``localhost``, ``[::1]`` or the configured host,
   with the port the request came in on.  A page on ``evil.example`` whose
   name was rebound to 127.0.0.1 sends ``Host: evil.example`` and is refused.
3. **Origin**: a request carrying ``Origin`` must come from the allow-list
   (``service.origins``) or from the service's own pages.  Browsers always
   send ``Origin`` on WebSocket handshakes and cross-origin requests; a
   request without it comes from a local program, which the token (native
   API) or the loopback rule already covers.
4. **CORS**: allowed foreign origins get ``Access-Control-Allow-Origin``
   for their own origin only (never ``*``); preflights are answered here,
   including Chrome's ``Access-Control-Allow-Private-Network``.

5. **No PIN in the URL**: a query parameter whose name looks like a PIN
   (``data/api.toml`` ``[url] pin_words``) is refused (400, ``pin_in_url``)
   before any route or log sees it; PINs travel in request bodies only.

Refusals are HTTP 403 with the JSON error body (400 for a PIN in the URL;
WebSocket: the handshake is refused with 403).  Responses get ``nosniff``, ``no-referrer``,
``Cache-Control: no-store`` and, for pages, a CSP that forbids framing.
:class:`TokenGate` then asks every HTTP request under ``/api/v1/`` for the
installation's bearer token before routing (so that even an unknown path or
a wrong method answers 401 to a caller without it); the routes check it
again and document it in the OpenAPI document.  The event stream checks
the token itself (browsers pass it as a WebSocket subprotocol).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from apdu.errors import SscardError
from terminal.service._data import load_data
from terminal.service.config import ServiceConfig
from terminal.service.errors import ClientRefused, HostRefused, OriginRefused, PinInUrl, Unauthorized
from terminal.service.responses import error_body
from terminal.service.tokens import AccessToken

__all__ = [
    "SecurityMiddleware",
    "TokenGate",
    "allowed_hosts",
    "bearer_token",
    "header",
    "is_loopback_peer",
    "pin_in_query",
]

log = logging.getLogger("sscard.service.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, X-Sscard-Api-Version"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PAGE_PREFIXES = ("/kiosk", "/pin")
API_PATH = "/api/"


def header(scope: Scope, name: str) -> str | None:
    """The first value of header ``name`` (lower case) or None."""
    key = name.lower().encode("latin-1")
    for raw_name, raw_value in scope.get("headers", []):
        if raw_name == key:
            return bytes(raw_value).decode("latin-1")
    return None


def is_loopback_peer(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def pin_in_query(scope: Scope) -> bool:
    """True when a query parameter's name contains one of the PIN words."""
    raw = scope.get("query_string", b"")
    if not raw:
        return False
    words: list[str] = load_data("api")["url"]["pin_words"]
    text = bytes(raw).decode("latin-1")
    names = [name.lower() for name, _ in parse_qsl(text, keep_blank_values=True)]
    return any(word in name for name in names for word in words)


def allowed_hosts(config: ServiceConfig) -> frozenset[str]:
    names = {"127.0.0.1", "localhost", "[::1]"}
    host = config.host.strip("[]").lower()
    names.add(f"[{host}]" if ":" in host else host)
    return frozenset(names)


def _split_host(value: str) -> tuple[str, int | None] | None:
    text = value.strip().lower()
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[: end + 1], text[end + 1 :]
    else:
        name, _, port_text = text.partition(":")
        rest = f":{port_text}" if port_text else ""
    if not rest:
        return name, None
    if not rest.startswith(":") or not rest[1:].isdigit():
        return None
    return name, int(rest[1:])


class SecurityMiddleware:
    """The checks of the module docstring, then ``app``."""

    def __init__(self, app: ASGIApp, config: ServiceConfig) -> None:
        self.app = app
        self.config = config
        self.hosts = allowed_hosts(config)
        self.origins = config.allowed_origins
        self.own = frozenset(config.own_origins)
        self.api_version = str(load_data("api")["api_version"]).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            origin = self.check(scope)
            self.check_url(scope)
        except SscardError as exc:
            log.warning("refused %s %s: %s", kind, scope.get("path", ""), exc.error_id)
            await self._refuse(scope, send, exc)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        cors = origin is not None and origin not in self.own
        if scope["method"] == "OPTIONS" and header(scope, "access-control-request-method"):
            await self._preflight(scope, send, origin)
            return
        await self.app(scope, receive, self._decorating(scope, send, origin if cors else None))

    def check(self, scope: Scope) -> str | None:
        """Run the peer, Host and Origin checks; return the (allowed) origin or None."""
        if not is_loopback_peer(scope):
            raise ClientRefused("the peer is not a loopback address")
        server = scope.get("server")
        port = int(server[1]) if server and server[1] is not None else None
        host_value = header(scope, "host")
        parsed = _split_host(host_value) if host_value is not None else None
        if parsed is None or parsed[0] not in self.hosts or (parsed[1] is not None and parsed[1] != port):
            raise HostRefused("the Host header does not name the loopback service")
        if parsed[1] is None and port not in (80, None):
            raise HostRefused("the Host header lacks the service port")
        origin = header(scope, "origin")
        if origin is None:
            return None
        normalized = origin.strip().lower().rstrip("/")
        if normalized not in self.origins:
            raise OriginRefused(f"origin {origin[:100]!r} is not on the allow-list")
        return normalized

    @staticmethod
    def check_url(scope: Scope) -> None:
        if pin_in_query(scope):
            raise PinInUrl("a PIN-like query parameter was refused")

    async def _refuse(self, scope: Scope, send: Send, exc: SscardError) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": exc.error_id})
            return
        body = json.dumps(error_body(exc), ensure_ascii=False).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 400 if isinstance(exc, PinInUrl) else 403,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _preflight(self, scope: Scope, send: Send, origin: str | None) -> None:
        headers = [(b"cache-control", b"no-store"), (b"content-length", b"0")]
        if origin is not None:
            headers += self._cors_headers(origin)
            headers += [
                (b"access-control-allow-methods", CORS_METHODS.encode()),
                (b"access-control-allow-headers", CORS_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
            if header(scope, "access-control-request-private-network"):
                headers.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    def _decorating(self, scope: Scope, send: Send, cors_origin: str | None) -> Send:
        path = str(scope.get("path", ""))
        page = path.startswith(PAGE_PREFIXES)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                extra: list[tuple[bytes, bytes]] = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if page:
                    extra += [(b"content-security-policy", PAGE_CSP.encode()), (b"x-frame-options", b"DENY")]
                if path.startswith(API_PATH):
                    extra.append((b"x-sscard-api-version", self.api_version))
                if cors_origin is not None:
                    extra += self._cors_headers(cors_origin)
                    extra.append((b"access-control-expose-headers", b"X-Sscard-Api-Version, Retry-After"))
                message = {**message, "headers": headers + [h for h in extra if h[0] not in present]}
            await send(message)

        return wrapped


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    value = header(scope, "authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenGate:
    """401 for HTTP requests under ``prefix`` without the installation token."""

    def __init__(self, app: ASGIApp, token: AccessToken, prefix: str) -> None:
        self.app = app
        self.token = token
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            if (path == self.prefix or path.startswith(self.prefix + "/")) and not self.token.matches(
                bearer_token(scope)
            ):
                error = Unauthorized("no valid bearer token")
                body = json.dumps(error_body(error), ensure_ascii=False).encode("utf-8")
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="sscard"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
