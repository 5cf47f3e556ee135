"""Exceptions raised by sm_crypto.

Every bad input raises one of these classes; no bare ``ValueError`` escapes
from a backend. Messages are English and never contain key material,
plaintexts or nonces; :attr:`CryptoError.message_zh` gives the Chinese text
for end users (loaded from ``sm_crypto/data/errors.toml``).

Passing an object of the wrong *type* (for example ``str`` where ``bytes`` is
expected) is a programming error and raises :class:`TypeError`.
"""

from __future__ import annotations

from typing import ClassVar

from sm_crypto._resources import load_toml

__all__ = [
    "BackendUnavailableError",
    "CertificateError",
    "ChainError",
    "CryptoError",
    "DecryptionError",
    "InvalidBlockLengthError",
    "InvalidKeyError",
    "InvalidParameterError",
    "InvalidPointError",
    "InvalidSignatureError",
    "PaddingError",
]


def _zh_text(error_id: str) -> str:
    table = load_toml("errors.toml")
    entry = table.get(error_id) or table["crypto_error"]
    return str(entry["zh"])


class CryptoError(Exception):
    """Base class of every sm_crypto exception."""

    error_id: ClassVar[str] = "crypto_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def message_zh(self) -> str:
        """Chinese text for end users."""
        return _zh_text(self.error_id)


class InvalidKeyError(CryptoError):
    """A key has the wrong length or an out-of-range value."""

    error_id = "invalid_key"


class InvalidBlockLengthError(CryptoError):
    """Data or an IV is not a whole number of cipher blocks."""

    error_id = "invalid_block_length"


class PaddingError(CryptoError):
    """Padding found on decryption is malformed."""

    error_id = "padding_invalid"


class InvalidSignatureError(CryptoError):
    """A signature is malformed, out of range, or does not verify."""

    error_id = "signature_invalid"


class InvalidPointError(CryptoError):
    """An encoded elliptic-curve point is malformed, off the curve or infinity."""

    error_id = "point_invalid"


class DecryptionError(CryptoError):
    """An SM2 ciphertext is truncated, malformed, or fails its C3 check."""

    error_id = "decryption_failed"


class CertificateError(CryptoError):
    """A certificate cannot be parsed or uses an unsupported algorithm."""

    error_id = "certificate_invalid"


class ChainError(CryptoError):
    """A certificate chain does not verify.

    ``reason`` is a stable identifier: ``no_issuer``, ``bad_signature``,
    ``expired``, ``not_yet_valid``, ``not_ca``, ``key_usage``,
    ``path_length``, ``critical_extension``, ``too_long``.
    """

    error_id = "certificate_chain_invalid"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidParameterError(CryptoError):
    """An argument value is out of its documented range (MAC length, factor size, nonce...)."""

    error_id = "invalid_parameter"


class BackendUnavailableError(CryptoError):
    """The requested SM2 backend cannot be used on this machine."""

    error_id = "backend_unavailable"
