"""SM2 key envelope: an SM2 private key protected for one SM2 recipient.

The dual-certificate scheme of the national standards has the key
management side generate the *encryption* key pair and deliver its private
key to the card sealed under the card's *signature* public key (the idea of
GM/T 0016 ``ENVELOPEDKEYBLOB``).  The layout used here (210 bytes)::

    C1 || C3 || C2     SM2 encryption of a fresh 16-byte SM4 key under the
                       recipient's public key (65 + 32 + 16 = 113 bytes)
    E(k, d)            SM4-ECB of the 32-byte private scalar d (32 bytes)
    04 || x || y       the public key of d (65 bytes)

:func:`seal_private_key` builds it; :func:`open_private_key` checks every
part (ciphertext, the scalar's range, that ``d·G`` equals the enclosed
public key) and raises :class:`~sm_crypto.errors.DecryptionError` on any
mismatch.  Nothing here logs or returns the key in any other form.
"""

from __future__ import annotations

import secrets

from sm_crypto._bytes import as_bytes
from sm_crypto.block import Sm4Key
from sm_crypto.errors import DecryptionError, InvalidKeyError, InvalidPointError
from sm_crypto.sm2 import Sm2PrivateKey, Sm2PublicKey

__all__ = ["ENVELOPE_LENGTH", "open_private_key", "seal_private_key"]

SESSION_KEY_LENGTH = 16
SCALAR_LENGTH = 32
POINT_LENGTH = 65
SEALED_KEY_LENGTH = POINT_LENGTH + 32 + SESSION_KEY_LENGTH
ENVELOPE_LENGTH = SEALED_KEY_LENGTH + SCALAR_LENGTH + POINT_LENGTH


def seal_private_key(recipient: Sm2PublicKey, key: Sm2PrivateKey) -> bytes:
    """The 210-byte envelope of ``key`` for the holder of ``recipient``'s private key."""
    if not isinstance(recipient, Sm2PublicKey) or not isinstance(key, Sm2PrivateKey):
        raise TypeError("recipient must be an Sm2PublicKey and key an Sm2PrivateKey")
    session = secrets.token_bytes(SESSION_KEY_LENGTH)
    sealed = recipient.encrypt(session)
    body = Sm4Key(session).encrypt_ecb(key.to_bytes())
    return sealed + body + key.public_key().to_bytes()


def open_private_key(recipient: Sm2PrivateKey, envelope: bytes) -> Sm2PrivateKey:
    """The private key inside ``envelope`` (built for ``recipient``'s public key)."""
    if not isinstance(recipient, Sm2PrivateKey):
        raise TypeError("recipient must be an Sm2PrivateKey")
    data = as_bytes(envelope, "envelope")
    if len(data) != ENVELOPE_LENGTH:
        raise DecryptionError(f"a key envelope is {ENVELOPE_LENGTH} bytes")
    sealed = data[:SEALED_KEY_LENGTH]
    body = data[SEALED_KEY_LENGTH : SEALED_KEY_LENGTH + SCALAR_LENGTH]
    point = data[SEALED_KEY_LENGTH + SCALAR_LENGTH :]
    session = recipient.decrypt(sealed)
    if len(session) != SESSION_KEY_LENGTH:
        raise DecryptionError("the envelope's session key has the wrong length")
    scalar = Sm4Key(session).decrypt_ecb(body)
    try:
        key = Sm2PrivateKey.from_bytes(scalar)
        public = Sm2PublicKey.from_bytes(point)
    except (InvalidKeyError, InvalidPointError):
        raise DecryptionError("the envelope holds no valid SM2 key pair") from None
    if key.public_key() != public:
        raise DecryptionError("the envelope's private key does not match its public key")
    return key
