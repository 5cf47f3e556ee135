"""SM4 (GB/T 32907) and 3DES block-cipher keys with one shared API.

Both key classes offer ECB and CBC with explicit padding (see
:mod:`sm_crypto.padding`) and the CBC-MAC that card operating systems compute:

``mac(data, iv=None, length=4)``
    ISO/IEC 9797-1 MAC algorithm 1 with padding method 2: ``80 00..`` padding
    is always appended, the padded data is CBC-encrypted with the full key
    starting from ``iv`` (default all zeros), and the first ``length`` bytes
    of the last cipher block are the MAC. ``iv`` may be a whole block or a
    4- or 8-byte card challenge, which is right-padded with zero bytes to
    the block size (``iv(ch)`` of docs/card-os.md; for SM4 an 8-byte
    challenge gives ``challenge || 00*8``).

``TdesKey.retail_mac(data, iv=None, length=4)``
    ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC", ANSI X9.19) with padding
    method 2: single DES with K1 over all blocks, then the last block is
    finished with the full 3DES key (decrypt K2, encrypt K1 -- or K3 for a
    24-byte key). Generation-2 cards use this one (docs/card-os.md).

Backend: ``cryptography`` ciphers (OpenSSL). Each key keeps persistent
cipher contexts, so a MAC over an APDU costs a few microseconds instead of
re-creating an OpenSSL context per call: a CBC context continues from the
last cipher block it produced, and the first input block is corrected by
that block to start the chain from the requested IV. The contexts are
guarded by a lock, so a key object may be shared between threads.

``repr()`` of a key shows its type and size, never key bytes.
"""

from __future__ import annotations

import hmac
import threading
from typing import ClassVar

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import (
    BlockCipherAlgorithm,
    Cipher,
    CipherContext,
    algorithms,
    modes,
)

from sm_crypto._bytes import as_bytes, xor_bytes
from sm_crypto.errors import (
    InvalidBlockLengthError,
    InvalidKeyError,
    InvalidParameterError,
)
from sm_crypto.padding import Padding, pad, unpad

__all__ = ["BlockCipherKey", "Sm4Key", "TdesKey"]

# Card challenge lengths (GET CHALLENGE Le 04 / 08) accepted as a MAC IV and
# right-padded with zeros to the block size.
_CHALLENGE_IV_SIZES = (4, 8)


class _Engine:
    """Persistent ECB and CBC contexts for one key."""

    __slots__ = (
        "_algorithm",
        "_block_size",
        "_cbc_dec",
        "_cbc_dec_state",
        "_cbc_enc",
        "_cbc_enc_state",
        "_ecb_dec",
        "_ecb_enc",
        "_lock",
        "_zero_iv",
    )

    def __init__(self, algorithm: BlockCipherAlgorithm, block_size: int) -> None:
        self._algorithm = algorithm
        self._block_size = block_size
        self._zero_iv = bytes(block_size)
        self._lock = threading.Lock()
        self._ecb_enc: CipherContext | None = None
        self._ecb_dec: CipherContext | None = None
        self._cbc_enc: CipherContext | None = None
        self._cbc_dec: CipherContext | None = None
        self._cbc_enc_state = 0
        self._cbc_dec_state = 0

    def ecb_encrypt(self, data: bytes) -> bytes:
        if not data:
            return b""
        with self._lock:
            if self._ecb_enc is None:
                self._ecb_enc = Cipher(self._algorithm, modes.ECB()).encryptor()  # noqa: S305 - block primitive
            return self._ecb_enc.update(data)

    def ecb_decrypt(self, data: bytes) -> bytes:
        if not data:
            return b""
        with self._lock:
            if self._ecb_dec is None:
                self._ecb_dec = Cipher(self._algorithm, modes.ECB()).decryptor()  # noqa: S305 - block primitive
            return self._ecb_dec.update(data)

    def cbc_encrypt(self, data: bytes, iv: bytes) -> bytes:
        if not data:
            return b""
        bs = self._block_size
        with self._lock:
            if self._cbc_enc is None:
                self._cbc_enc = Cipher(self._algorithm, modes.CBC(self._zero_iv)).encryptor()
            first = int.from_bytes(data[:bs], "big") ^ int.from_bytes(iv, "big") ^ self._cbc_enc_state
            out = self._cbc_enc.update(first.to_bytes(bs, "big") + data[bs:])
            self._cbc_enc_state = int.from_bytes(out[-bs:], "big")
        return out

    def cbc_decrypt(self, data: bytes, iv: bytes) -> bytes:
        if not data:
            return b""
        bs = self._block_size
        with self._lock:
            if self._cbc_dec is None:
                self._cbc_dec = Cipher(self._algorithm, modes.CBC(self._zero_iv)).decryptor()
            out = self._cbc_dec.update(data)
            state = self._cbc_dec_state
            self._cbc_dec_state = int.from_bytes(data[-bs:], "big")
        first = int.from_bytes(out[:bs], "big") ^ state ^ int.from_bytes(iv, "big")
        return first.to_bytes(bs, "big") + out[bs:]


class BlockCipherKey:
    """Common API of :class:`Sm4Key` and :class:`TdesKey`."""

    block_size: ClassVar[int]
    _key_sizes: ClassVar[tuple[int, ...]]
    _name: ClassVar[str]

    __slots__ = ("_engine", "_key")

    def __init__(self, key: bytes) -> None:
        key = as_bytes(key, "key")
        if len(key) not in self._key_sizes:
            sizes = " or ".join(str(s) for s in self._key_sizes)
            raise InvalidKeyError(f"{self._name} key must be {sizes} bytes, got {len(key)}")
        self._key = key
        self._engine = _Engine(self._make_algorithm(key), self.block_size)

    @classmethod
    def _make_algorithm(cls, key: bytes) -> BlockCipherAlgorithm:
        raise TypeError(f"{cls.__name__} is abstract")

    @property
    def key_size(self) -> int:
        """Key length in bytes."""
        return len(self._key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._key) * 8}-bit key>)"

    def __reduce__(self) -> str:
        raise TypeError(f"{type(self).__name__} objects cannot be pickled")

    # -- helpers -----------------------------------------------------------

    def _check_iv(self, iv: bytes) -> bytes:
        iv = as_bytes(iv, "iv")
        if len(iv) != self.block_size:
            raise InvalidBlockLengthError(f"IV must be {self.block_size} bytes, got {len(iv)}")
        return iv

    def _check_blocks(self, data: bytes) -> None:
        if len(data) % self.block_size:
            raise InvalidBlockLengthError(
                f"data length {len(data)} is not a multiple of the block size {self.block_size}"
            )

    def _mac_iv(self, iv: bytes | None) -> bytes:
        if iv is None:
            return bytes(self.block_size)
        iv = as_bytes(iv, "iv")
        if len(iv) in _CHALLENGE_IV_SIZES and len(iv) < self.block_size:
            return iv + bytes(self.block_size - len(iv))
        return self._check_iv(iv)

    def _check_mac_length(self, length: int) -> None:
        if isinstance(length, bool) or not isinstance(length, int):
            raise TypeError("length must be int")
        if not 1 <= length <= self.block_size:
            raise InvalidParameterError(f"MAC length must be 1..{self.block_size} bytes")

    # -- ECB / CBC ---------------------------------------------------------

    def encrypt_ecb(self, data: bytes, padding: Padding = Padding.NONE) -> bytes:
        """ECB-encrypt ``data`` after applying ``padding``."""
        return self._engine.ecb_encrypt(pad(data, self.block_size, padding))

    def decrypt_ecb(self, data: bytes, padding: Padding = Padding.NONE) -> bytes:
        """ECB-decrypt ``data`` and remove ``padding``."""
        data = as_bytes(data, "data")
        self._check_blocks(data)
        return unpad(self._engine.ecb_decrypt(data), self.block_size, padding)

    def encrypt_cbc(self, data: bytes, iv: bytes, padding: Padding = Padding.NONE) -> bytes:
        """CBC-encrypt ``data`` after applying ``padding``; ``iv`` is one block."""
        iv = self._check_iv(iv)
        return self._engine.cbc_encrypt(pad(data, self.block_size, padding), iv)

    def decrypt_cbc(self, data: bytes, iv: bytes, padding: Padding = Padding.NONE) -> bytes:
        """CBC-decrypt ``data`` and remove ``padding``; ``iv`` is one block."""
        iv = self._check_iv(iv)
        data = as_bytes(data, "data")
        self._check_blocks(data)
        return unpad(self._engine.cbc_decrypt(data, iv), self.block_size, padding)

    # -- MAC ---------------------------------------------------------------

    def mac(self, data: bytes, iv: bytes | None = None, length: int = 4) -> bytes:
        """CBC-MAC as cards compute it (ISO/IEC 9797-1 algorithm 1, padding method 2)."""
        self._check_mac_length(length)
        chain_iv = self._mac_iv(iv)
        padded = pad(data, self.block_size, Padding.ISO9797_M2)
        out = self._engine.cbc_encrypt(padded, chain_iv)
        return out[-self.block_size :][:length]

    def verify_mac(self, data: bytes, expected: bytes, iv: bytes | None = None) -> bool:
        """Constant-time check of a :meth:`mac` value; its length is taken from ``expected``."""
        expected = as_bytes(expected, "expected")
        return hmac.compare_digest(self.mac(data, iv, len(expected)), expected)

    def check_value(self, length: int = 3) -> bytes:
        """Key check value: the first ``length`` bytes of E(K, 00..00)."""
        self._check_mac_length(length)
        return self._engine.ecb_encrypt(bytes(self.block_size))[:length]


class Sm4Key(BlockCipherKey):
    """A 16-byte SM4 key."""

    block_size = 16
    _key_sizes = (16,)
    _name = "SM4"
    __slots__ = ()

    @classmethod
    def _make_algorithm(cls, key: bytes) -> BlockCipherAlgorithm:
        return algorithms.SM4(key)


class TdesKey(BlockCipherKey):
    """A two-key (16-byte) or three-key (24-byte) 3DES-EDE key."""

    block_size = 8
    _key_sizes = (16, 24)
    _name = "3DES"
    __slots__ = ("_single",)

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        # Single DES with K1, expressed as 3DES with K1 K1 K1.
        self._single = _Engine(TripleDES(self._key[:8] * 3), 8)

    @classmethod
    def _make_algorithm(cls, key: bytes) -> BlockCipherAlgorithm:
        # Always hand OpenSSL the three-key form: K1 K2 -> K1 K2 K1.
        return TripleDES(key if len(key) == 24 else key + key[:8])

    def retail_mac(self, data: bytes, iv: bytes | None = None, length: int = 4) -> bytes:
        """ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with padding method 2."""
        self._check_mac_length(length)
        chain = self._mac_iv(iv)
        padded = pad(data, 8, Padding.ISO9797_M2)
        head, last = padded[:-8], padded[-8:]
        if head:
            chain = self._single.cbc_encrypt(head, chain)[-8:]
        return self._engine.ecb_encrypt(xor_bytes(chain, last))[:length]

    def verify_retail_mac(self, data: bytes, expected: bytes, iv: bytes | None = None) -> bool:
        """Constant-time check of a :meth:`retail_mac` value."""
        expected = as_bytes(expected, "expected")
        return hmac.compare_digest(self.retail_mac(data, iv, len(expected)), expected)
