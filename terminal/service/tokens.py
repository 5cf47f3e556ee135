"""The per-installation access token of the native API.

The token is 32 random bytes (URL-safe base64, 43 characters) kept in a file
readable by its owner only (mode 0600; default
``$SSCARD_DATA_DIR/service/token``).  The service creates it at its first
start and prints the file's path (never the token).  Counter applications
send it as ``Authorization: Bearer <token>``; browsers' WebSocket API cannot
set headers, so the event stream also takes it as the subprotocol
``bearer.<token>`` (next to ``sscard.v1``).  Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

from terminal.service.errors import ServiceConfigError

__all__ = ["TOKEN_PATTERN", "AccessToken", "load_or_create_token"]

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
TOKEN_BYTES = 32


class AccessToken:
    """The token; ``matches`` compares in constant time; repr and str hide it."""

    __slots__ = ("_value", "path")

    def __init__(self, value: str, path: Path | None = None) -> None:
        if not TOKEN_PATTERN.match(value):
            raise ServiceConfigError("the access token file does not hold a valid token")
        self._value = value
        self.path = path

    @property
    def value(self) -> str:
        return self._value

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self._value.encode("ascii"))

    def __repr__(self) -> str:
        return f"AccessToken(path={str(self.path) if self.path else None!r})"

    __str__ = __repr__


def load_or_create_token(path: Path) -> AccessToken:
    """Read the token at ``path``; create the file (0600, parent 0700) when missing.

    A file that exists but is readable by others is tightened to 0600."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceConfigError(
            f"{path}: cannot read the access token file ({type(exc).__name__})"
        ) from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return AccessToken(text, path)


def _create(path: Path) -> AccessToken:
    value = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_token(path)
    except OSError as exc:
        raise ServiceConfigError(f"{path}: cannot create the access token file ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return AccessToken(value, path)
