"""Interoperability with the ``openssl`` 3 command line, in both directions."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
from crypto_vectors import load_vectors, openssl

from sm_crypto import sm2
from sm_crypto.block import Sm4Key
from sm_crypto.ca import TestCa
from sm_crypto.errors import InvalidSignatureError
from sm_crypto.padding import Padding
from sm_crypto.sm2 import DEFAULT_UID, Sm2PrivateKey, Sm2PublicKey
from sm_crypto.sm3 import hmac_sm3, sm3
from sm_crypto.x509 import Sm2Certificate, verify_chain

DISTID = "distid:" + DEFAULT_UID.decode()
BACKENDS = sm2.available_backends()


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# -- SM3 / HMAC-SM3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 3, 64, 1000, 100_000])
def test_sm3_matches_openssl_dgst(size: int) -> None:
    data = os.urandom(size)
    assert openssl("dgst", "-sm3", "-binary", data=data) == sm3(data)


def test_sm3_standard_vector_in_openssl() -> None:
    vector = load_vectors("sm3.toml")["hash"][0]
    assert openssl("dgst", "-sm3", "-binary", data=b"abc").hex().upper() == vector["digest"]


@pytest.mark.parametrize(("key_len", "size"), [(1, 0), (16, 100), (64, 10), (100, 1000)])
def test_hmac_sm3_matches_openssl_mac(tmp_path: Path, key_len: int, size: int) -> None:
    key, data = os.urandom(key_len), os.urandom(size)
    infile = write(tmp_path / "data", data)
    out = openssl(
        "mac",
        "-digest",
        "SM3",
        "-macopt",
        f"hexkey:{key.hex()}",
        "-binary",
        "-in",
        infile,
        "HMAC",
    )
    assert out == hmac_sm3(key, data)


# -- SM4 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100])
def test_sm4_cbc_pkcs7_both_ways(size: int) -> None:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(size)
    args = ("-sm4-cbc", "-K", key.hex(), "-iv", iv.hex(), "-nosalt")
    ours = Sm4Key(key).encrypt_cbc(data, iv, Padding.PKCS7)
    assert openssl("enc", "-e", *args, data=data) == ours
    theirs = openssl("enc", "-e", *args, data=data)
    assert Sm4Key(key).decrypt_cbc(theirs, iv, Padding.PKCS7) == data
    assert openssl("enc", "-d", *args, data=ours) == data


def test_sm4_cbc_no_padding_both_ways() -> None:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(64)
    args = ("-sm4-cbc", "-K", key.hex(), "-iv", iv.hex(), "-nosalt", "-nopad")
    assert openssl("enc", "-e", *args, data=data) == Sm4Key(key).encrypt_cbc(data, iv)
    assert Sm4Key(key).decrypt_cbc(openssl("enc", "-e", *args, data=data), iv) == data


def test_sm4_ecb_vector_in_openssl() -> None:
    v = load_vectors("sm4.toml")["single"]
    out = openssl(
        "enc",
        "-sm4-ecb",
        "-K",
        v["key"],
        "-nosalt",
        "-nopad",
        data=bytes.fromhex(v["plaintext"]),
    )
    assert out.hex().upper() == v["ciphertext"]


# -- SM2 signatures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_signed_here_verified_by_openssl(tmp_path: Path, backend: str) -> None:
    key = Sm2PrivateKey.generate()
    message = os.urandom(200)
    with sm2.using_backend(backend):
        signature = key.sign_der(message)
    pub = write(tmp_path / "pub.pem", key.public_key().to_pem())
    msg = write(tmp_path / "msg", message)
    sig = write(tmp_path / "sig", signature)
    out = openssl(
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pub,
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-in",
        msg,
        "-sigfile",
        sig,
    )
    assert b"Signature Verified Successfully" in out
    bad = bytearray(signature)
    bad[-1] ^= 1
    write(tmp_path / "sig", bytes(bad))
    result = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            pub,
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            DISTID,
            "-in",
            msg,
            "-sigfile",
            sig,
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_signed_by_openssl_verified_here(tmp_path: Path, backend: str) -> None:
    keyfile = tmp_path / "key.pem"
    openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:SM2",
        "-out",
        str(keyfile),
    )
    key = Sm2PrivateKey.from_pem(keyfile.read_bytes())
    pub_pem = openssl("pkey", "-in", str(keyfile), "-pubout")
    assert Sm2PublicKey.from_pem(pub_pem) == key.public_key()
    message = b"signed by openssl"
    msg = write(tmp_path / "msg", message)
    with_id = openssl(
        "pkeyutl",
        "-sign",
        "-inkey",
        str(keyfile),
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-in",
        msg,
    )
    without_id = openssl(
        "pkeyutl",
        "-sign",
        "-inkey",
        str(keyfile),
        "-rawin",
        "-digest",
        "sm3",
        "-in",
        msg,
    )
    with sm2.using_backend(backend):
        key.public_key().verify_der(with_id, message)
        key.public_key().verify_der(without_id, message, uid=b"")
        with pytest.raises(InvalidSignatureError):
            key.public_key().verify_der(without_id, message)


def test_openssl_reads_our_keys(tmp_path: Path) -> None:
    key = Sm2PrivateKey.generate()
    priv = write(tmp_path / "key.pem", key.to_pem())
    assert openssl("pkey", "-in", priv, "-pubout") == key.public_key().to_pem()
    der = openssl("pkey", "-in", priv, "-outform", "DER")
    assert Sm2PrivateKey.from_der(der).to_bytes() == key.to_bytes()
    pub = write(tmp_path / "pub.pem", key.public_key().to_pem())
    assert openssl("pkey", "-pubin", "-in", pub, "-pubout") == key.public_key().to_pem()


def test_openssl_der_and_compressed_keys_read_here(tmp_path: Path) -> None:
    keyfile = str(tmp_path / "key.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", keyfile)
    key = Sm2PrivateKey.from_pem((tmp_path / "key.pem").read_bytes())
    public = key.public_key()
    # Private key DER as OpenSSL writes it (SEC 1) and as PKCS#8.
    sec1 = openssl("pkey", "-in", keyfile, "-outform", "DER")
    pkcs8 = openssl("pkcs8", "-topk8", "-nocrypt", "-in", keyfile, "-outform", "DER")
    assert Sm2PrivateKey.from_der(sec1).to_bytes() == key.to_bytes()
    assert Sm2PrivateKey.from_der(pkcs8).to_bytes() == key.to_bytes()
    # SubjectPublicKeyInfo DER, uncompressed and compressed (PEM too).
    assert Sm2PublicKey.from_der(openssl("pkey", "-in", keyfile, "-pubout", "-outform", "DER")) == public
    compressed = openssl("ec", "-in", keyfile, "-pubout", "-conv_form", "compressed", "-outform", "DER")
    assert compressed.endswith(public.to_bytes(compressed=True))
    assert Sm2PublicKey.from_der(compressed) == public
    compressed_pem = openssl("ec", "-in", keyfile, "-pubout", "-conv_form", "compressed")
    assert Sm2PublicKey.from_pem(compressed_pem) == public


# -- SM2 encryption ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_encryption_both_ways(tmp_path: Path, backend: str) -> None:
    key = Sm2PrivateKey.generate()
    priv = write(tmp_path / "key.pem", key.to_pem())
    pub = write(tmp_path / "pub.pem", key.public_key().to_pem())
    message = os.urandom(77)
    with sm2.using_backend(backend):
        ours = key.public_key().encrypt_der(message)
    assert openssl("pkeyutl", "-decrypt", "-inkey", priv, "-in", write(tmp_path / "c1", ours)) == message
    theirs = openssl(
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pub,
        "-in",
        write(tmp_path / "m", message),
    )
    with sm2.using_backend(backend):
        assert key.decrypt_der(theirs) == message


# -- certificates -------------------------------------------------------------------------------------------


def test_openssl_certificate_with_distid_verifies_here(tmp_path: Path) -> None:
    keyfile = tmp_path / "ca.pem"
    openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:SM2",
        "-out",
        str(keyfile),
    )
    certfile = tmp_path / "ca.crt"
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(keyfile),
        "-sm3",
        "-sigopt",
        DISTID,
        "-subj",
        "/C=CN/O=OpenSSL CA/CN=root",
        "-days",
        "30",
        "-out",
        str(certfile),
    )
    cert = Sm2Certificate.from_pem(certfile.read_bytes())
    assert cert.public_key == Sm2PrivateKey.from_pem(keyfile.read_bytes()).public_key()
    cert.verify_signature(cert.public_key)
    assert cert.is_ca
    leaf_key = Sm2PrivateKey.generate()
    ca = TestCa._from_parts(Sm2PrivateKey.from_pem(keyfile.read_bytes()), cert, DEFAULT_UID)
    leaf = ca.issue_signature_certificate(leaf_key.public_key(), {"CN": "holder"})
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert verify_chain(leaf, [], [cert], at) == [leaf, cert]


def test_openssl_certificate_without_distid_needs_empty_uid(tmp_path: Path) -> None:
    keyfile = tmp_path / "ca.pem"
    openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:SM2",
        "-out",
        str(keyfile),
    )
    certfile = tmp_path / "ca.crt"
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(keyfile),
        "-sm3",
        "-subj",
        "/CN=plain",
        "-days",
        "30",
        "-out",
        str(certfile),
    )
    cert = Sm2Certificate.from_pem(certfile.read_bytes())
    cert.verify_signature(cert.public_key, uid=b"")
    with pytest.raises(InvalidSignatureError):
        cert.verify_signature(cert.public_key)


def test_openssl_verifies_our_chain(tmp_path: Path) -> None:
    # openssl verify (3.0) uses an empty SM2 ID for certificate signatures.
    root = TestCa({"C": "CN", "CN": "Root"}, uid=b"")
    sub = root.issue_intermediate({"C": "CN", "CN": "Sub"}, path_length=0)
    leaf = sub.issue_signature_certificate(Sm2PrivateKey.generate().public_key(), {"CN": "张三"})
    out = openssl(
        "verify",
        "-check_ss_sig",
        "-CAfile",
        write(tmp_path / "root.pem", root.certificate.to_pem()),
        "-untrusted",
        write(tmp_path / "sub.pem", sub.certificate.to_pem()),
        write(tmp_path / "leaf.pem", leaf.to_pem()),
    )
    assert out.strip().endswith(b"OK")
    text = openssl("x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-text")
    assert b"SM2-with-SM3" in text
    assert b"Digital Signature, Non Repudiation" in text


def test_default_uid_certificate_signature_checked_by_openssl(tmp_path: Path) -> None:
    root = TestCa({"CN": "GM/T 0015 root"})
    leaf = root.issue_encryption_certificate(Sm2PrivateKey.generate().public_key(), {"CN": "card"})
    out = openssl(
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        write(tmp_path / "ca.pem", root.key.public_key().to_pem()),
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-in",
        write(tmp_path / "tbs", leaf.tbs_der),
        "-sigfile",
        write(tmp_path / "sig", sm2.signature_to_der(leaf.signature)),
    )
    assert b"Signature Verified Successfully" in out
    # The TBS bytes handed to openssl are the ones openssl itself extracts.
    pem = write(tmp_path / "leaf.pem", leaf.to_pem())
    tbs_file = tmp_path / "tbs2"
    openssl("asn1parse", "-in", pem, "-strparse", "4", "-noout", "-out", str(tbs_file))
    assert tbs_file.read_bytes() == leaf.tbs_der
