"""Thin adapters for what the terminal API does not offer yet.

``read_signature_public_key``: READ PUBLIC KEY ``80 4A 01 00 41``
(docs/card-os.md §8) for the national ``iReadSignatureKey``: the card's SM2
signature public key ``04 || x || y``.  A card without one answers 6A88
(-27272); generations 1 and 2 refuse the command (-SW).
"""

from __future__ import annotations

from apdu.command import CommandApdu
from terminal.session import CardSession

__all__ = ["read_signature_public_key"]

READ_PUBLIC_KEY = CommandApdu(0x80, 0x4A, 0x01, 0x00, le=0x41)


def read_signature_public_key(session: CardSession) -> bytes:
    """The SM2 signature public key of the card (65 bytes, uncompressed)."""
    with session.transaction():
        session.select_application()
        return session.send(READ_PUBLIC_KEY).data
