"""sm_crypto beside gmssl 3.2.2, in the same rounds: SM2 sign/verify, SM4 MAC, SM3.

Pairs (same input, same work):

- SM2 sign of a 100-byte message with the default user ID (Z, e = SM3(Z||M),
  signature): ``Sm2PrivateKey.sign`` vs gmssl ``sign_with_sm3``;
- SM2 verify of that signature: ``Sm2PublicKey.verify`` vs ``verify_with_sm3``;
- SM4 MAC over 256 bytes (ISO 9797-1 method 2 padding, so 17 CBC blocks) vs
  gmssl SM4-CBC encryption of the same 256 bytes (PKCS#7 padding, 17 blocks);
- SM3 of 1 KiB vs gmssl ``sm3_hash``.

Each answer is checked once before timing (the two libraries must agree), so
a figure can never come from a broken call.  The ratio is gmssl's median over
ours: how many times faster sm_crypto is.  SM2 is timed with the default
(``openssl``) backend; the pure-Python ``pure`` backend is reported beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sm_crypto import Sm2PrivateKey
from sm_crypto.block import Sm4Key
from sm_crypto.errors import CryptoError
from sm_crypto.padding import Padding
from sm_crypto.sm2 import available_backends, backend_name, using_backend
from sm_crypto.sm3 import sm3
from terminal.bench.context import BenchContext
from terminal.bench.errors import BenchCheckError, BenchSetupError
from terminal.bench.report import SectionResult, latency_figure
from terminal.bench.timing import Subject, measure_interleaved

__all__ = ["run"]

SECTION = "crypto"
MESSAGE_LEN = 100
MAC_LEN = 256
HASH_LEN = 1024


def _gmssl() -> tuple[Any, Any, Any, Any]:
    try:
        from gmssl import func, sm2, sm3, sm4
    except ImportError as exc:
        raise BenchSetupError(
            "gmssl 3.2.2 is not installed (pip install -e '.[bench]' or scripts/setup)"
        ) from exc
    return func, sm2, sm3, sm4


def _pure_backend_name() -> str | None:
    names = available_backends()
    for name in ("pure", "pure-int"):
        if name in names:
            return name
    return None


def _in_backend(name: str, call: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with using_backend(name):
            return call()

    return run


def gmssl_key_pair(gm_sm2: Any) -> tuple[Sm2PrivateKey, Any]:
    """A fresh key pair and gmssl's ``CryptSM2`` over it.

    gmssl 3.2.2 "strips" a leading ``04`` from the public key with
    ``str.lstrip("04")``, which eats every leading ``0`` and ``4`` digit of
    the x coordinate; a key whose x starts with those digits gives gmssl a
    wrong point (and ``verify`` crashes).  The anchor uses a key gmssl reads
    correctly: x does not start with ``04`` (passed without the prefix).
    """
    while True:
        key = Sm2PrivateKey.generate()
        xy = key.public_key().to_bytes()[1:].hex()
        if not xy.startswith("04"):
            return key, gm_sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key=xy, mode=1)


def run(ctx: BenchContext, result: SectionResult) -> None:
    func, gm_sm2, gm_sm3, gm_sm4 = _gmssl()
    settings = ctx.settings(SECTION)
    plan = ctx.plan(SECTION)
    slow = float(settings["gmssl_weight"])

    key, gm = gmssl_key_pair(gm_sm2)
    public = key.public_key()
    message = os.urandom(MESSAGE_LEN)
    signature = key.sign(message)
    gm_signature = gm.sign_with_sm3(message)
    if not gm.verify_with_sm3(signature.hex(), message):
        raise BenchCheckError("gmssl rejects sm_crypto's SM2 signature")
    try:
        public.verify(bytes.fromhex(gm_signature), message)
    except CryptoError as exc:
        raise BenchCheckError("sm_crypto rejects gmssl's SM2 signature") from exc

    mac_key_bytes = os.urandom(16)
    mac_key = Sm4Key(mac_key_bytes)
    mac_data = os.urandom(MAC_LEN)
    gm_cipher = gm_sm4.CryptSM4()
    gm_cipher.set_key(mac_key_bytes, gm_sm4.SM4_ENCRYPT)
    iv = bytes(16)
    ours_cbc = mac_key.encrypt_cbc(mac_data, iv, padding=Padding.PKCS7)
    if bytes(gm_cipher.crypt_cbc(iv, mac_data)) != ours_cbc:
        raise BenchCheckError("gmssl and sm_crypto disagree on SM4-CBC")

    hash_data = os.urandom(HASH_LEN)
    hash_digest = sm3(hash_data).hex()

    def gmssl_sm3() -> None:
        # gmssl pads the list it is given in place: convert afresh on every call
        if gm_sm3.sm3_hash(func.bytes_to_list(hash_data)) != hash_digest:
            raise BenchCheckError("gmssl and sm_crypto disagree on SM3")

    gmssl_sm3()

    def verify_ours() -> None:
        public.verify(signature, message)

    def verify_gmssl() -> None:
        if not gm.verify_with_sm3(signature.hex(), message):
            raise BenchCheckError("gmssl failed to verify during timing")

    pure = _pure_backend_name()
    if pure == backend_name():
        pure = None
    pairs: list[tuple[str, str, Callable[[], object], Callable[[], object], Callable[[], object] | None]] = [
        (
            "sm2_sign",
            f"SM2 sign, {MESSAGE_LEN}-byte message",
            lambda: key.sign(message),
            lambda: gm.sign_with_sm3(message),
            _in_backend(pure, lambda: key.sign(message)) if pure else None,
        ),
        (
            "sm2_verify",
            f"SM2 verify, {MESSAGE_LEN}-byte message",
            verify_ours,
            verify_gmssl,
            _in_backend(pure, verify_ours) if pure else None,
        ),
        (
            "sm4_mac",
            f"SM4 MAC over {MAC_LEN} bytes",
            lambda: mac_key.mac(mac_data),
            lambda: gm_cipher.crypt_cbc(iv, mac_data),
            None,
        ),
        ("sm3", f"SM3 of {HASH_LEN} bytes", lambda: sm3(hash_data), gmssl_sm3, None),
    ]
    default_backend = backend_name()
    result.notes.append(f"SM2 backend: {default_backend}; gmssl 3.2.2 anchors in the same rounds")
    for short, label, ours, theirs, alternative in pairs:
        ctx.log(f"crypto: {short}")
        subjects = [Subject("ours", ours), Subject("gmssl", theirs, weight=slow)]
        if alternative is not None:
            subjects.append(Subject("alternative", alternative))
        samples = measure_interleaved(subjects, plan)
        anchor = result.add(
            latency_figure(f"crypto.{short}.gmssl", SECTION, f"{label} (gmssl 3.2.2)", samples["gmssl"])
        )
        is_sm2 = short.startswith("sm2")
        result.add(
            latency_figure(
                f"crypto.{short}",
                SECTION,
                f"{label} (sm_crypto{', ' + default_backend if is_sm2 else ''})",
                samples["ours"],
                anchor=anchor,
                invert=True,
                meaning="times faster than gmssl",
                details={"backend": default_backend} if is_sm2 else {},
            )
        )
        if alternative is not None and pure is not None:
            result.add(
                latency_figure(
                    f"crypto.{short}.{pure}",
                    SECTION,
                    f"{label} (sm_crypto, {pure} backend)",
                    samples["alternative"],
                    anchor=anchor,
                    invert=True,
                    meaning="times faster than gmssl",
                    details={"backend": pure},
                )
            )
