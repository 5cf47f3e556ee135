"""SM2 certificates: TestCa output, parsing and chain verification."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sm_crypto.ca import TestCa
from sm_crypto.errors import (
    CertificateError,
    ChainError,
    InvalidParameterError,
    InvalidSignatureError,
)
from sm_crypto.sm2 import Sm2PrivateKey
from sm_crypto.x509 import Sm2Certificate, load_pem_certificates, verify_chain

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
NOW = dt.datetime(2027, 6, 1, tzinfo=UTC)
ROOT_SUBJECT = {"C": "CN", "O": "北京市社会保障卡测试", "CN": "Test Root CA"}


@pytest.fixture(scope="module")
def root() -> TestCa:
    return TestCa(ROOT_SUBJECT, not_before=T0, not_after=T0 + dt.timedelta(days=3650))


@pytest.fixture(scope="module")
def sub(root: TestCa) -> TestCa:
    return root.issue_intermediate({"C": "CN", "CN": "Card Issuing CA"}, path_length=0, not_before=T0)


@pytest.fixture(scope="module")
def holder() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


def holder_subject() -> dict[str, str]:
    return {"C": "CN", "CN": "张三", "serialNumber": "110101199001011234"}


def test_root_certificate_fields(root: TestCa) -> None:
    cert = root.certificate
    assert cert.is_ca and cert.is_self_issued
    assert cert.key_usage == frozenset({"key_cert_sign", "crl_sign"})
    assert cert.public_key == root.key.public_key()
    assert cert.not_before == T0
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ROOT_SUBJECT["O"]
    assert cert.subject_key_identifier == cert.authority_key_identifier
    assert len(cert.fingerprint()) == 32
    cert.verify_signature(root.key.public_key())
    assert "Test Root CA" in repr(cert)


def test_signature_algorithm_is_sm2_with_sm3(root: TestCa) -> None:
    parsed = asn1_x509.Certificate.load(root.certificate.der)
    assert parsed["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert parsed["tbs_certificate"]["signature"]["algorithm"].dotted == "1.2.156.10197.1.501"
    crypto_cert = crypto_x509.load_der_x509_certificate(root.certificate.der)
    assert crypto_cert.signature_algorithm_oid.dotted_string == "1.2.156.10197.1.501"


def test_end_entity_certificates(sub: TestCa, holder: Sm2PrivateKey) -> None:
    sig_cert = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    enc_cert = sub.issue_encryption_certificate(holder.public_key(), holder_subject(), not_before=T0)
    assert sig_cert.key_usage == frozenset({"digital_signature", "non_repudiation"})
    assert enc_cert.key_usage == frozenset(
        {
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
        }
    )
    assert not sig_cert.is_ca
    assert sig_cert.public_key == holder.public_key()
    assert sig_cert.not_after <= sub.certificate.not_after
    assert sig_cert.serial_number != enc_cert.serial_number
    assert sig_cert.authority_key_identifier == sub.certificate.subject_key_identifier


def test_chain_verifies(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    path = verify_chain(
        leaf,
        [sub.certificate],
        [root.certificate],
        NOW,
        required_key_usage=["digital_signature"],
    )
    assert path == [leaf, sub.certificate, root.certificate]


def test_chain_with_unrelated_intermediates(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    # Same name as the real intermediate, other key.
    decoy = TestCa({"CN": "Card Issuing CA", "C": "CN"}, not_before=T0)
    leaf = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    path = verify_chain(leaf, [decoy.certificate, sub.certificate], [root.certificate], NOW)
    assert path[1] == sub.certificate


def test_pem_round_trip_and_bundle(root: TestCa, sub: TestCa) -> None:
    bundle = sub.certificate.to_pem() + root.certificate.to_pem()
    certs = load_pem_certificates(bundle)
    assert certs == [sub.certificate, root.certificate]
    assert Sm2Certificate.from_pem(root.certificate.to_pem()) == root.certificate
    assert Sm2Certificate.from_der(root.certificate.der) == root.certificate


# -- chain failures, one per reason --------------------------------------------------------------


def test_untrusted_root(sub: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    other_root = TestCa({"CN": "Other Root"}, not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [sub.certificate], [other_root.certificate], NOW)
    assert info.value.reason == "no_issuer"


def test_missing_intermediate(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [], [root.certificate], NOW)
    assert info.value.reason == "no_issuer"


def test_expired_and_not_yet_valid(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = sub.issue_signature_certificate(
        holder.public_key(),
        holder_subject(),
        not_before=T0,
        not_after=T0 + dt.timedelta(days=30),
    )
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [sub.certificate], [root.certificate], NOW)
    assert info.value.reason == "expired"
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [sub.certificate], [root.certificate], T0 - dt.timedelta(days=1))
    assert info.value.reason == "not_yet_valid"


def test_expired_intermediate(root: TestCa, holder: Sm2PrivateKey) -> None:
    short = root.issue_intermediate({"CN": "Short CA"}, not_before=T0, not_after=T0 + dt.timedelta(days=10))
    leaf = short.issue_signature_certificate(
        holder.public_key(),
        holder_subject(),
        not_before=T0,
        not_after=T0 + dt.timedelta(days=500),
    )
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [short.certificate], [root.certificate], T0 + dt.timedelta(days=100))
    assert info.value.reason == "expired"


def test_issuer_not_ca(root: TestCa, holder: Sm2PrivateKey) -> None:
    fake_ca_key = Sm2PrivateKey.generate()
    fake_ca_cert = root.issue_signature_certificate(
        fake_ca_key.public_key(), {"CN": "Not A CA"}, not_before=T0
    )
    fake_ca = TestCa._from_parts(fake_ca_key, fake_ca_cert, root.uid)
    leaf = fake_ca.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [fake_ca_cert], [root.certificate], NOW)
    assert info.value.reason == "not_ca"


def test_issuer_without_cert_sign_usage(root: TestCa, holder: Sm2PrivateKey) -> None:
    ca_key = Sm2PrivateKey.generate()
    ca_cert = root.issue_certificate(
        ca_key.public_key(),
        {"CN": "CA without keyCertSign"},
        key_usage={"crl_sign"},
        is_ca=True,
        not_before=T0,
    )
    ca = TestCa._from_parts(ca_key, ca_cert, root.uid)
    leaf = ca.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [ca_cert], [root.certificate], NOW)
    assert info.value.reason == "key_usage"


def test_path_length_constraint(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    deeper = sub.issue_intermediate({"CN": "Too Deep CA"}, not_before=T0)
    leaf = deeper.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [sub.certificate, deeper.certificate], [root.certificate], NOW)
    assert info.value.reason == "path_length"


def test_tampered_certificate_signature(root: TestCa, sub: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = sub.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    tampered = bytearray(leaf.der)
    tampered[-5] ^= 0x01  # inside the signature value
    forged = Sm2Certificate(bytes(tampered))
    with pytest.raises(ChainError) as info:
        verify_chain(forged, [sub.certificate], [root.certificate], NOW)
    assert info.value.reason == "bad_signature"


def test_tampered_tbs(root: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = root.issue_signature_certificate(holder.public_key(), {"CN": "AAAA"}, not_before=T0)
    tampered = Sm2Certificate(leaf.der.replace(b"AAAA", b"AAAB"))
    with pytest.raises(InvalidSignatureError):
        tampered.verify_signature(root.key.public_key())
    with pytest.raises(ChainError) as info:
        verify_chain(tampered, [], [root.certificate], NOW)
    assert info.value.reason == "bad_signature"


def test_required_key_usage(root: TestCa, holder: Sm2PrivateKey) -> None:
    enc = root.issue_encryption_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(enc, [], [root.certificate], NOW, required_key_usage=["digital_signature"])
    assert info.value.reason == "key_usage"


def test_leaf_that_is_an_anchor(root: TestCa) -> None:
    assert verify_chain(root.certificate, [], [root.certificate], NOW) == [root.certificate]


def test_verify_chain_parameter_errors(root: TestCa) -> None:
    with pytest.raises(InvalidParameterError):
        verify_chain(root.certificate, [], [root.certificate], dt.datetime(2027, 1, 1))
    with pytest.raises(InvalidParameterError):
        verify_chain(root.certificate, [], [], NOW)


def test_wrong_uid_breaks_chain(root: TestCa, holder: Sm2PrivateKey) -> None:
    leaf = root.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    with pytest.raises(ChainError) as info:
        verify_chain(leaf, [], [root.certificate], NOW, uid=b"")
    assert info.value.reason == "bad_signature"


def test_empty_uid_ca(holder: Sm2PrivateKey) -> None:
    ca = TestCa({"CN": "OpenSSL-style root"}, not_before=T0, uid=b"")
    leaf = ca.issue_signature_certificate(holder.public_key(), holder_subject(), not_before=T0)
    assert verify_chain(leaf, [], [ca.certificate], NOW, uid=b"")[-1] == ca.certificate


# -- parse failures --------------------------------------------------------------------------------


def test_non_sm2_certificate_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = crypto_x509.Name([crypto_x509.NameAttribute(NameOID.COMMON_NAME, "p256")])
    cert = (
        crypto_x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0)
        .not_valid_after(NOW)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateError):
        Sm2Certificate(cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x01", b"not a certificate"])
def test_garbage_rejected(data: bytes) -> None:
    with pytest.raises(CertificateError):
        Sm2Certificate(data)


def test_truncated_rejected(root: TestCa) -> None:
    for cut in (10, 100, len(root.certificate.der) - 1):
        with pytest.raises(CertificateError):
            Sm2Certificate(root.certificate.der[:cut])


def test_unknown_version_rejected(root: TestCa) -> None:
    # A version field of 1 (X.509 v2) is neither v1 nor v3: cryptography raises its
    # own InvalidVersion (not a ValueError), found by the certificate fuzzer.
    der = root.certificate.der
    marker = bytes.fromhex("a003020102")
    assert der.count(marker) == 1
    with pytest.raises(CertificateError):
        Sm2Certificate(der.replace(marker, bytes.fromhex("a003020101")))


@pytest.mark.parametrize("serial", [0, -5])
def test_non_positive_serial_rejected(root: TestCa, serial: int) -> None:
    # Found by the certificate fuzzer: cryptography only warns about it (for now).
    cert = asn1_x509.Certificate.load(root.certificate.der)
    cert["tbs_certificate"]["serial_number"] = serial
    der = cert.dump(force=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CertificateError, match="serial number is not positive"):
            Sm2Certificate(der)


def test_pem_errors() -> None:
    with pytest.raises(CertificateError):
        load_pem_certificates(b"no pem here")
    with pytest.raises(CertificateError):
        load_pem_certificates(Sm2PrivateKey.generate().public_key().to_pem())


@pytest.mark.parametrize("subject", [{}, {"XX": "bad attribute"}, {"CN": ""}])
def test_ca_subject_validation(root: TestCa, holder: Sm2PrivateKey, subject: dict[str, str]) -> None:
    with pytest.raises(InvalidParameterError):
        root.issue_signature_certificate(holder.public_key(), subject)


def test_ca_parameter_validation(root: TestCa, holder: Sm2PrivateKey) -> None:
    pub = holder.public_key()
    with pytest.raises(InvalidParameterError):
        root.issue_certificate(pub, {"CN": "x"}, key_usage={"fly"})
    with pytest.raises(InvalidParameterError):
        root.issue_certificate(pub, {"CN": "x"}, key_usage=set())
    with pytest.raises(InvalidParameterError):
        root.issue_signature_certificate(pub, {"CN": "x"}, not_before=NOW, not_after=T0)
    with pytest.raises(InvalidParameterError):
        root.issue_signature_certificate(pub, {"CN": "x"}, serial=0)
    with pytest.raises(InvalidParameterError):
        root.issue_signature_certificate(pub, {"CN": "x"}, not_before=dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidParameterError):
        root.issue_certificate(pub, {"CN": "x"}, key_usage={"digital_signature"}, path_length=1)


def test_testca_reachable_from_x509_module() -> None:
    from sm_crypto import x509 as x509_module

    assert x509_module.TestCa is TestCa


def test_names_compare_by_rfc5280_when_their_encodings_differ() -> None:
    """Chain building matches an issuer by name: identical encodings at once,
    otherwise by RFC 5280 (case and spaces folded, string types ignored)."""
    from asn1crypto.x509 import Name

    from sm_crypto.x509 import _same_name

    utf8 = Name.build({"common_name": "Beijing Card CA", "country_name": "CN"})
    printable = Name.build({"common_name": "beijing  card ca", "country_name": "CN"}, use_printable=True)
    other = Name.build({"common_name": "Shanghai Card CA", "country_name": "CN"})
    assert utf8.dump() != printable.dump()
    assert _same_name(utf8, Name.load(utf8.dump()))
    assert _same_name(utf8, printable) and _same_name(printable, utf8)
    assert not _same_name(utf8, other)
