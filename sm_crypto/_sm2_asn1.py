"""SM2 key encodings with asn1crypto.

* SubjectPublicKeyInfo (RFC 5480 / GM/T 0010): algorithm ``id-ecPublicKey``
  with namedCurve ``1.2.156.10197.1.301``; subjectPublicKey is the
  uncompressed (or compressed) point. An SPKI whose algorithm OID is the
  SM2 curve OID itself (seen in older Chinese software) is accepted on input.
* PKCS#8 PrivateKeyInfo (RFC 5208 / RFC 5915) with the same algorithm; the
  inner ECPrivateKey carries the 32-byte scalar and the public key.
* SEC1 ``EC PRIVATE KEY`` (RFC 5915) is accepted on input.

Malformed private-key encodings raise InvalidKeyError; malformed public-key
encodings raise InvalidKeyError, and a bad point inside raises
InvalidPointError (from the caller's point decoding).
"""

from __future__ import annotations

from asn1crypto import core, keys, pem

from sm_crypto._der import DerError, read_tlv
from sm_crypto._resources import load_toml
from sm_crypto.errors import InvalidKeyError

__all__ = [
    "EC_PUBLIC_KEY_OID",
    "SM2_CURVE_OID",
    "decode_private_key",
    "decode_spki",
    "encode_pkcs8",
    "encode_spki",
    "pem_decode",
    "pem_encode",
]

_OIDS = load_toml("sm2.toml")["oid"]
SM2_CURVE_OID: str = _OIDS["sm2_curve"]
EC_PUBLIC_KEY_OID: str = _OIDS["ec_public_key"]
_CURVE_NAME = "sm2p256v1"
_SCALAR_BYTES = 32
_SEQUENCE_TAG = 0x30

if keys.NamedCurve._map.get(SM2_CURVE_OID) != _CURVE_NAME:
    keys.NamedCurve.register(_CURVE_NAME, SM2_CURVE_OID, _SCALAR_BYTES)


def _algorithm() -> keys.PublicKeyAlgorithm:
    return keys.PublicKeyAlgorithm(
        {
            "algorithm": "ec",
            "parameters": keys.ECDomainParameters(name="named", value=_CURVE_NAME),
        }
    )


def _check_algorithm(
    algorithm: keys.PublicKeyAlgorithm | keys.PrivateKeyAlgorithm,
) -> None:
    oid = algorithm["algorithm"].dotted
    if oid == SM2_CURVE_OID:
        return
    if oid != EC_PUBLIC_KEY_OID:
        raise InvalidKeyError("key algorithm is not an elliptic-curve key")
    params = algorithm["parameters"]
    if params.name != "named" or params.chosen.dotted != SM2_CURVE_OID:
        raise InvalidKeyError("key is not on the SM2 curve")


def _encode_spki(point: bytes) -> bytes:
    return bytes(keys.PublicKeyInfo({"algorithm": _algorithm(), "public_key": point}).dump())


# The SPKI of an uncompressed point is this fixed prefix and the 65 point bytes
# (made by asn1crypto above, once): encoding and decoding it is a byte copy,
# ≈ 100 µs less per key than asn1crypto (a card certificate per card flow).
_UNCOMPRESSED_POINT = 65
_SPKI_PREFIX = _encode_spki(b"\x04" + bytes(_UNCOMPRESSED_POINT - 1))[:-_UNCOMPRESSED_POINT]


def encode_spki(point: bytes) -> bytes:
    """DER SubjectPublicKeyInfo around an encoded point."""
    if len(point) == _UNCOMPRESSED_POINT and point[0] == 0x04:
        return _SPKI_PREFIX + point
    return _encode_spki(point)


def decode_spki(der: bytes) -> bytes:
    """Encoded point from a DER SubjectPublicKeyInfo."""
    if len(der) == len(_SPKI_PREFIX) + _UNCOMPRESSED_POINT and der.startswith(_SPKI_PREFIX):
        return bytes(der[len(_SPKI_PREFIX) :])
    try:
        info = keys.PublicKeyInfo.load(der, strict=True)
        _check_algorithm(info["algorithm"])
        point = info["public_key"]
        return bytes(point.contents[1:]) if isinstance(point, core.BitString) else bytes(point.native)
    except InvalidKeyError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidKeyError("malformed SubjectPublicKeyInfo") from exc


def encode_pkcs8(d: int, public_point: bytes) -> bytes:
    """DER PKCS#8 PrivateKeyInfo for scalar ``d`` (RFC 5915 inner structure)."""
    inner = keys.ECPrivateKey(
        {
            "version": "ecPrivkeyVer1",
            "private_key": d,
            "public_key": public_point,
        }
    )
    inner.set_key_size(_SCALAR_BYTES)
    return bytes(
        keys.PrivateKeyInfo(
            {
                "version": 0,
                "private_key_algorithm": keys.PrivateKeyAlgorithm(
                    {
                        "algorithm": "ec",
                        "parameters": keys.ECDomainParameters(name="named", value=_CURVE_NAME),
                    }
                ),
                "private_key": inner,
            }
        ).dump()
    )


def _ec_private_key_fields(ec_key: keys.ECPrivateKey) -> tuple[int, bytes | None]:
    if ec_key["version"].native != "ecPrivkeyVer1":
        raise InvalidKeyError("unsupported ECPrivateKey version")
    scalar = bytes(ec_key["private_key"].contents)
    if len(scalar) != _SCALAR_BYTES:
        raise InvalidKeyError("EC private key must be 32 bytes")
    public = ec_key["public_key"]
    point = None if isinstance(public, core.Void) else bytes(public.contents[1:])
    return int.from_bytes(scalar, "big"), point


def _second_item_tag(der: bytes) -> int:
    """Tag of the second element of the outer SEQUENCE (PKCS#8: SEQUENCE, SEC 1: OCTET STRING)."""
    try:
        tag, start, end = read_tlv(der, 0)
        if tag != _SEQUENCE_TAG or end != len(der):
            raise InvalidKeyError("private key is not a single DER SEQUENCE")
        _tag, _start, first_end = read_tlv(der, start)
        return read_tlv(der, first_end)[0]
    except DerError as exc:
        raise InvalidKeyError("malformed private key encoding") from exc


def decode_private_key(der: bytes) -> tuple[int, bytes | None]:
    """Scalar and (optional) encoded public point from PKCS#8 or SEC1 DER."""
    try:
        if _second_item_tag(der) == _SEQUENCE_TAG:
            info = keys.PrivateKeyInfo.load(der, strict=True)
            _check_algorithm(info["private_key_algorithm"])
            ec_key = keys.ECPrivateKey.load(info["private_key"].contents, strict=True)
        else:
            ec_key = keys.ECPrivateKey.load(der, strict=True)
            params = ec_key["parameters"]
            if not isinstance(params, core.Void) and (
                params.name != "named" or params.chosen.dotted != SM2_CURVE_OID
            ):
                raise InvalidKeyError("key is not on the SM2 curve")
        return _ec_private_key_fields(ec_key)
    except InvalidKeyError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidKeyError("malformed private key encoding") from exc


def pem_encode(der: bytes, label: str) -> bytes:
    """PEM armour (``-----BEGIN <label>-----``)."""
    return bytes(pem.armor(label, der))


def pem_decode(data: bytes, labels: tuple[str, ...]) -> tuple[str, bytes]:
    """Remove PEM armour; the label must be one of ``labels``."""
    try:
        if not pem.detect(data):
            raise InvalidKeyError("data is not PEM")
        label, _headers, der = pem.unarmor(data)
    except InvalidKeyError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidKeyError("malformed PEM") from exc
    if label not in labels:
        raise InvalidKeyError(f"unexpected PEM label {label!r}")
    return label, der
