"""National cryptographic algorithms (SM2, SM3, SM4) and 3DES for sscard.

Bytes in, bytes out; keys are objects whose ``repr()`` never shows secrets.
The SM3 hash function is ``sm_crypto.sm3.sm3`` (not re-exported here, so that
``sm_crypto.sm3`` stays the module).
See docs/crypto.md for definitions, backends and measured timings.
"""

from sm_crypto.block import BlockCipherKey, Sm4Key, TdesKey
from sm_crypto.ca import TestCa
from sm_crypto.diversify import diversify, diversify_multi, session_key
from sm_crypto.errors import (
    BackendUnavailableError,
    CertificateError,
    ChainError,
    CryptoError,
    DecryptionError,
    InvalidBlockLengthError,
    InvalidKeyError,
    InvalidParameterError,
    InvalidPointError,
    InvalidSignatureError,
    PaddingError,
)
from sm_crypto.padding import Padding, pad, unpad
from sm_crypto.sm2 import (
    DEFAULT_UID,
    CipherOrder,
    Sm2PrivateKey,
    Sm2PublicKey,
    signature_from_der,
    signature_to_der,
    z_value,
)
from sm_crypto.sm3 import hmac_sm3, sm3_kdf
from sm_crypto.x509 import Sm2Certificate, load_pem_certificates, verify_chain

__all__ = [
    "DEFAULT_UID",
    "BackendUnavailableError",
    "BlockCipherKey",
    "CertificateError",
    "ChainError",
    "CipherOrder",
    "CryptoError",
    "DecryptionError",
    "InvalidBlockLengthError",
    "InvalidKeyError",
    "InvalidParameterError",
    "InvalidPointError",
    "InvalidSignatureError",
    "Padding",
    "PaddingError",
    "Sm2Certificate",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "Sm4Key",
    "TdesKey",
    "TestCa",
    "diversify",
    "diversify_multi",
    "hmac_sm3",
    "load_pem_certificates",
    "pad",
    "session_key",
    "signature_from_der",
    "signature_to_der",
    "sm3_kdf",
    "unpad",
    "verify_chain",
    "z_value",
]
