"""SM2: published vectors, encodings, round trips, tampering, bad input."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from crypto_vectors import h, load_vectors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from sm_crypto import sm2
from sm_crypto._ec import Curve, CurveArithmetic
from sm_crypto._sm2_core import (
    decrypt_with,
    encrypt_with,
    sign_with,
    verify_with,
    z_digest,
)
from sm_crypto.errors import (
    DecryptionError,
    InvalidKeyError,
    InvalidParameterError,
    InvalidPointError,
    InvalidSignatureError,
)
from sm_crypto.sm2 import DEFAULT_UID, CipherOrder, Sm2PrivateKey, Sm2PublicKey
from sm_crypto.sm3 import sm3

V = load_vectors("sm2.toml")
N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
BACKENDS = sm2.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with sm2.using_backend(request.param):
        yield request.param


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


def vector_key(section: str) -> Sm2PrivateKey:
    return Sm2PrivateKey.from_int(int(V[section]["d"], 16))


# -- published vectors: recommended curve (GB/T 32918.5) ---------------------------------


def test_recommended_sign_vector(backend: str) -> None:
    v = V["recommended_sign"]
    k = vector_key("recommended_sign")
    pub = k.public_key()
    assert (pub.x, pub.y) == (int(v["x"], 16), int(v["y"], 16))
    assert pub.z_value(v["uid_ascii"].encode()) == h(v["z"])
    message = v["message_ascii"].encode()
    signature = k.sign(message, v["uid_ascii"].encode(), k=int(v["k"], 16))
    assert signature == h(v["r"]) + h(v["s"])
    pub.verify(signature, message)
    pub.verify_der(sm2.signature_to_der(signature), message)


def test_recommended_encrypt_vector(backend: str) -> None:
    v = V["recommended_encrypt"]
    k = vector_key("recommended_encrypt")
    plaintext = v["plaintext_ascii"].encode()
    c1, c2, c3 = h(v["c1"]), h(v["c2"]), h(v["c3"])
    nonce = int(v["k"], 16)
    assert k.public_key().encrypt(plaintext, k=nonce) == c1 + c3 + c2
    assert k.public_key().encrypt(plaintext, CipherOrder.C1C2C3, k=nonce) == c1 + c2 + c3
    assert k.decrypt(c1 + c3 + c2) == plaintext
    assert k.decrypt(c1 + c2 + c3, CipherOrder.C1C2C3) == plaintext


# -- published vectors: example curve (GB/T 32918.2 / .4 appendix A) -----------------------


def example_curve(use_gmpy2: bool) -> CurveArithmetic:
    c = V["example_curve"]
    curve = Curve(
        name="gbt32918-example",
        p=int(c["p"], 16),
        a=int(c["a"], 16),
        b=int(c["b"], 16),
        n=int(c["n"], 16),
        h=1,
        gx=int(c["gx"], 16),
        gy=int(c["gy"], 16),
    )
    return CurveArithmetic(curve, use_gmpy2=use_gmpy2)


@pytest.mark.parametrize("use_gmpy2", [True, False])
def test_example_curve_sign_vector(use_gmpy2: bool) -> None:
    arith = example_curve(use_gmpy2)
    v = V["example_curve_sign"]
    d = int(v["d"], 16)
    point = arith.mul_base(d)
    assert point == (int(v["x"], 16), int(v["y"], 16))
    z = z_digest(arith.curve, point[0], point[1], v["uid_ascii"].encode())
    assert z == h(v["z"])
    e = int.from_bytes(sm3(z + v["message_ascii"].encode()), "big")
    r, s = int(v["r"], 16), int(v["s"], 16)
    assert sign_with(arith, d, e, int(v["k"], 16)) == (r, s)
    assert verify_with(arith, point, e, r, s)
    assert not verify_with(arith, point, e + 1, r, s)


@pytest.mark.parametrize("use_gmpy2", [True, False])
def test_example_curve_encrypt_vector(use_gmpy2: bool) -> None:
    arith = example_curve(use_gmpy2)
    v = V["example_curve_encrypt"]
    d = int(v["d"], 16)
    point = arith.mul_base(d)
    assert point == (int(v["x"], 16), int(v["y"], 16))
    plaintext = v["plaintext_ascii"].encode()
    result = encrypt_with(arith, point, plaintext, int(v["k"], 16))
    assert result is not None
    c1, c3, c2 = result
    c1_bytes = b"\x04" + c1[0].to_bytes(32, "big") + c1[1].to_bytes(32, "big")
    assert (c1_bytes, c2, c3) == (h(v["c1"]), h(v["c2"]), h(v["c3"]))
    assert decrypt_with(arith, d, c1, c3, c2) == plaintext


# -- round trips (property tests) ---------------------------------------------------------------


ROUND_TRIP_KEY = Sm2PrivateKey.generate()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=200), uid=st.binary(max_size=40))
def test_sign_verify_round_trip(backend_name: str, message: bytes, uid: bytes) -> None:
    key = ROUND_TRIP_KEY
    with sm2.using_backend(backend_name):
        signature = key.sign(message, uid)
        assert len(signature) == 64
        key.public_key().verify(signature, message, uid)
        der = key.sign_der(message, uid)
        key.public_key().verify_der(der, message, uid)


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(
    plaintext=st.binary(min_size=1, max_size=200),
    order=st.sampled_from(list(CipherOrder)),
)
def test_encrypt_decrypt_round_trip(backend_name: str, plaintext: bytes, order: CipherOrder) -> None:
    key = ROUND_TRIP_KEY
    with sm2.using_backend(backend_name):
        ciphertext = key.public_key().encrypt(plaintext, order)
        assert len(ciphertext) == 65 + 32 + len(plaintext)
        assert key.decrypt(ciphertext, order) == plaintext
        assert key.decrypt_der(key.public_key().encrypt_der(plaintext)) == plaintext


def test_signatures_are_randomised(key: Sm2PrivateKey) -> None:
    assert key.sign(b"m") != key.sign(b"m")


# -- tampering: every flipped bit is rejected -------------------------------------------------


def flips(data: bytes) -> Iterator[bytes]:
    for i in range(len(data) * 8):
        yield (data[: i // 8] + bytes([data[i // 8] ^ (0x80 >> (i % 8))]) + data[i // 8 + 1 :])


def test_every_flipped_signature_bit_rejected(backend: str, key: Sm2PrivateKey) -> None:
    message = b"transfer 100 CNY"
    signature = key.sign(message)
    for bad in flips(signature):
        with pytest.raises(InvalidSignatureError):
            key.public_key().verify(bad, message)


def test_every_flipped_message_bit_rejected(backend: str, key: Sm2PrivateKey) -> None:
    message = b"card 1234"
    signature = key.sign(message)
    for bad in flips(message):
        with pytest.raises(InvalidSignatureError):
            key.public_key().verify(signature, bad)
    with pytest.raises(InvalidSignatureError):
        key.public_key().verify(signature, message, b"another uid")


def test_every_flipped_ciphertext_bit_rejected(backend: str, key: Sm2PrivateKey) -> None:
    for order in CipherOrder:
        ciphertext = key.public_key().encrypt(b"PIN!", order)
        for bad in flips(ciphertext):
            with pytest.raises(DecryptionError):
                key.decrypt(bad, order)


def test_signature_from_other_key_rejected(key: Sm2PrivateKey) -> None:
    other = Sm2PrivateKey.generate()
    with pytest.raises(InvalidSignatureError):
        key.public_key().verify(other.sign(b"m"), b"m")


# -- signature format errors ----------------------------------------------------------------------


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (N, 1), (1, N), (2**256 - 1, 5)])
def test_out_of_range_signature_rejected(key: Sm2PrivateKey, r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    with pytest.raises(InvalidSignatureError):
        key.public_key().verify(raw, b"m")


@pytest.mark.parametrize("length", [0, 63, 65, 72])
def test_wrong_signature_length_rejected(key: Sm2PrivateKey, length: int) -> None:
    with pytest.raises(InvalidSignatureError):
        key.public_key().verify(bytes(length), b"m")


def test_strict_der_signatures(key: Sm2PrivateKey) -> None:
    message = b"der"
    der = key.sign_der(message)
    raw = sm2.signature_from_der(der)
    assert sm2.signature_to_der(raw) == der
    key.public_key().verify(raw, message)
    bad_encodings = [
        der + b"\x00",  # trailing data
        der[:-1],  # truncated
        b"\x30\x81" + bytes([der[1]]) + der[2:],  # non-minimal length
        b"\x30\x06\x02\x01\x00\x02\x01\x01",  # r = 0
        b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # non-minimal integer
        b"\x30\x06\x02\x01\xff\x02\x01\x01",  # negative integer
        b"\x31" + der[1:],  # SET instead of SEQUENCE
        b"\x30\x03\x02\x01\x01",  # one integer only
        b"",
    ]
    for bad in bad_encodings:
        with pytest.raises(InvalidSignatureError):
            key.public_key().verify_der(bad, message)


# -- signing parameter errors ---------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, N, N + 5, -1])
def test_nonce_out_of_range(key: Sm2PrivateKey, k: int) -> None:
    with pytest.raises(InvalidParameterError):
        key.sign(b"m", k=k)
    with pytest.raises(InvalidParameterError):
        key.public_key().encrypt(b"m", k=k)


def test_unusable_nonce_reported() -> None:
    k = vector_key("recommended_sign")
    nonce = 12345
    point = Sm2PrivateKey.from_int(nonce).public_key()
    # Choose e so that r = (e + x1) mod n is 0, then so that r + k = n.
    for target in (0, N - nonce):
        e = (target - point.x) % N
        with pytest.raises(InvalidParameterError):
            k.sign_digest(e.to_bytes(32, "big"), k=nonce)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_digest_length_checked(key: Sm2PrivateKey, length: int) -> None:
    with pytest.raises(InvalidParameterError):
        key.sign_digest(bytes(length))
    with pytest.raises(InvalidParameterError):
        key.public_key().verify_digest(bytes(64), bytes(length))


def test_sign_digest_matches_sign(key: Sm2PrivateKey) -> None:
    e = key.public_key().message_digest(b"msg")
    key.public_key().verify_digest(key.sign_digest(e), e)
    assert key.sign_digest(e, k=777) == key.sign(b"msg", k=777)


def test_overlong_uid_rejected(key: Sm2PrivateKey) -> None:
    with pytest.raises(InvalidParameterError):
        key.sign(b"m", bytes(8192))
    key.public_key().verify(key.sign(b"m", bytes(8191)), b"m", bytes(8191))


def test_non_bytes_message_rejected(key: Sm2PrivateKey) -> None:
    with pytest.raises(TypeError):
        key.sign("text")  # type: ignore[arg-type]


# -- decryption errors --------------------------------------------------------------------------------


def test_truncated_ciphertexts_rejected(backend: str, key: Sm2PrivateKey) -> None:
    ciphertext = key.public_key().encrypt(b"abc")
    for cut in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            key.decrypt(ciphertext[:cut])


def test_c1_off_curve_rejected(key: Sm2PrivateKey) -> None:
    ciphertext = bytearray(key.public_key().encrypt(b"abc"))
    ciphertext[64] ^= 1  # last byte of y
    with pytest.raises(DecryptionError) as info:
        key.decrypt(bytes(ciphertext))
    assert isinstance(info.value.__cause__, InvalidPointError)


def test_compressed_c1_rejected(key: Sm2PrivateKey) -> None:
    ciphertext = key.public_key().encrypt(b"abc")
    point = Sm2PublicKey.from_bytes(ciphertext[:65]).to_bytes(compressed=True)
    with pytest.raises(DecryptionError):
        key.decrypt(point + ciphertext[65:] + bytes(32))


def test_wrong_key_rejected(backend: str, key: Sm2PrivateKey) -> None:
    ciphertext = key.public_key().encrypt(b"secret")
    with pytest.raises(DecryptionError):
        Sm2PrivateKey.generate().decrypt(ciphertext)


def test_der_ciphertext_errors(backend: str, key: Sm2PrivateKey) -> None:
    good = key.public_key().encrypt_der(b"abc")
    assert key.decrypt_der(good) == b"abc"
    for bad in (good[:-1], good + b"\x00", b"\x30\x00", b""):
        with pytest.raises(DecryptionError):
            key.decrypt_der(bad)
    for bad in flips(good):
        with pytest.raises(DecryptionError):
            key.decrypt_der(bad)


def test_empty_plaintext_rejected(key: Sm2PrivateKey) -> None:
    with pytest.raises(InvalidParameterError):
        key.public_key().encrypt(b"")
    with pytest.raises(InvalidParameterError):
        key.public_key().encrypt_der(b"")


# -- key encodings ---------------------------------------------------------------------------------------


def test_point_encodings_round_trip(key: Sm2PrivateKey) -> None:
    pub = key.public_key()
    uncompressed = pub.to_bytes()
    compressed = pub.to_bytes(compressed=True)
    assert len(uncompressed) == 65 and uncompressed[0] == 4
    assert len(compressed) == 33 and compressed[0] in (2, 3)
    assert Sm2PublicKey.from_bytes(uncompressed) == pub
    assert Sm2PublicKey.from_bytes(compressed) == pub
    assert Sm2PublicKey.from_bytes(uncompressed[1:]) == pub
    assert Sm2PublicKey.from_coordinates(pub.x, pub.y) == pub
    assert hash(Sm2PublicKey.from_bytes(compressed)) == hash(pub)


def test_public_key_starting_with_04_is_not_mangled() -> None:
    # gmssl strips a leading "04" from hex keys; x of this vector key starts with 04.
    c1 = h(V["recommended_encrypt"]["c1"])
    point = Sm2PublicKey.from_bytes(c1)
    assert point.x.to_bytes(32, "big").startswith(b"\x04")
    assert Sm2PublicKey.from_bytes(c1[1:]) == point


def non_residue_x() -> int:
    a, b = (
        P - 3,
        int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16),
    )
    x = 1
    while pow((x**3 + a * x + b) % P, (P - 1) // 2, P) == 1:
        x += 1
    return x


@pytest.mark.parametrize(
    "encoding",
    [
        b"",
        b"\x00",  # point at infinity
        b"\x04" + bytes(64),  # (0, 0) is not on the curve
        b"\x05" + bytes(64),  # unknown prefix
        b"\x06" + bytes(64),  # hybrid form not accepted
        b"\x04" + bytes(63),  # wrong length
        b"\x02" + P.to_bytes(32, "big"),  # x >= p
        b"\x02" + non_residue_x().to_bytes(32, "big"),  # no y for this x
        b"\x04" + (P + 1).to_bytes(32, "big") + bytes(32),
    ],
)
def test_bad_points_rejected(encoding: bytes) -> None:
    with pytest.raises(InvalidPointError):
        Sm2PublicKey.from_bytes(encoding)


def test_off_curve_coordinates_rejected(key: Sm2PrivateKey) -> None:
    pub = key.public_key()
    with pytest.raises(InvalidPointError):
        Sm2PublicKey(pub.x, (pub.y + 1) % P)


def test_pem_der_round_trips(key: Sm2PrivateKey) -> None:
    pub = key.public_key()
    assert Sm2PublicKey.from_der(pub.to_der()) == pub
    assert Sm2PublicKey.from_pem(pub.to_pem()) == pub
    assert pub.to_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
    again = Sm2PrivateKey.from_pem(key.to_pem())
    assert again.to_bytes() == key.to_bytes()
    assert Sm2PrivateKey.from_der(key.to_der()).public_key() == pub
    assert Sm2PrivateKey.from_bytes(key.to_bytes()).public_key() == pub
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_spki_oids(key: Sm2PrivateKey) -> None:
    info = asn1_keys.PublicKeyInfo.load(key.public_key().to_der())
    assert info["algorithm"]["algorithm"].dotted == "1.2.840.10045.2.1"
    assert info["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    pkcs8 = asn1_keys.PrivateKeyInfo.load(key.to_der())
    assert pkcs8["private_key_algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"


def test_sec1_private_key_accepted(key: Sm2PrivateKey) -> None:
    sec1 = asn1_keys.ECPrivateKey(
        {
            "version": "ecPrivkeyVer1",
            "private_key": int.from_bytes(key.to_bytes(), "big"),
            "parameters": asn1_keys.ECDomainParameters(name="named", value="1.2.156.10197.1.301"),
        }
    )
    sec1.set_key_size(32)
    pem = (
        b"-----BEGIN EC PRIVATE KEY-----\n"
        + base64.encodebytes(sec1.dump())
        + b"-----END EC PRIVATE KEY-----\n"
    )
    assert Sm2PrivateKey.from_pem(pem).public_key() == key.public_key()


def test_other_curve_keys_rejected() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = p256.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    spki = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKeyError):
        Sm2PrivateKey.from_der(pkcs8)
    with pytest.raises(InvalidKeyError):
        Sm2PublicKey.from_der(spki)


def test_malformed_key_files_rejected(key: Sm2PrivateKey) -> None:
    for bad in (
        b"",
        b"\x30\x00",
        b"garbage",
        key.to_der()[:-3],
        key.to_der() + b"\x00",
    ):
        with pytest.raises(InvalidKeyError):
            Sm2PrivateKey.from_der(bad)
        with pytest.raises(InvalidKeyError):
            Sm2PublicKey.from_der(bad)
    with pytest.raises(InvalidKeyError):
        Sm2PrivateKey.from_pem(key.public_key().to_pem())  # wrong label
    with pytest.raises(InvalidKeyError):
        Sm2PublicKey.from_pem(b"not pem at all")


def test_private_key_with_foreign_public_key_rejected(key: Sm2PrivateKey) -> None:
    from sm_crypto._sm2_asn1 import encode_pkcs8

    other = Sm2PrivateKey.generate().public_key().to_bytes()
    with pytest.raises(InvalidKeyError):
        Sm2PrivateKey.from_der(encode_pkcs8(int.from_bytes(key.to_bytes(), "big"), other))


@pytest.mark.parametrize("d", [0, N - 1, N, 2**256])
def test_private_key_range(d: int) -> None:
    with pytest.raises(InvalidKeyError):
        Sm2PrivateKey.from_int(d)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_private_key_length(length: int) -> None:
    with pytest.raises(InvalidKeyError):
        Sm2PrivateKey.from_bytes(b"\x01" * length)


def test_private_key_extremes_work() -> None:
    for d in (1, N - 2):
        k = Sm2PrivateKey.from_int(d)
        k.public_key().verify(k.sign(b"x"), b"x")
        assert k.decrypt(k.public_key().encrypt(b"y")) == b"y"


def test_generated_keys_are_distinct() -> None:
    assert Sm2PrivateKey.generate().to_bytes() != Sm2PrivateKey.generate().to_bytes()


def test_repr_does_not_leak_private_key() -> None:
    k = vector_key("recommended_sign")
    text = repr(k)
    assert V["recommended_sign"]["d"].lower() not in text.lower()
    assert "public" in text


def test_private_key_cannot_be_pickled(key: Sm2PrivateKey) -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_z_value_helper(key: Sm2PrivateKey) -> None:
    pub = key.public_key()
    assert sm2.z_value(pub) == pub.z_value(DEFAULT_UID)
    assert sm2.z_value(pub, b"") != sm2.z_value(pub)
    random_uid = secrets.token_bytes(5)
    assert pub.message_digest(b"m", random_uid) == sm3(pub.z_value(random_uid) + b"m")
