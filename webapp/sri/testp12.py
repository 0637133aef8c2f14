"""Test .p12 signing certificates shaped like Ecuador's, for the demo, the samples and the tests.

A .p12 from `make_test_p12` opens with webapp.sri.p12.load_p12 like a real one (RSA-2048 key,
digitalSignature key usage, the RUC in the extension 1.3.6.1.4.1.37746.3.11 where Security Data
writes it, the razón social in .3.10) and signs comprobantes that verify against it, but its
issuer is a made-up authority labelled as such, generated on this machine: SRI rejects its
signatures ("FIRMA INVALIDA"), as it must.

Tests make the files an issuer must not upload with the same call: an expired certificate
(`now` years ago), one not valid yet (`now` in the future), an encryption certificate
(`signing=False`), one without the private key (`with_key=False`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID

TEST_AUTHORITY = "AUTORIDAD DE CERTIFICACION DE PRUEBAS — SIN VALIDEZ"
SECURITY_DATA_ARC = "1.3.6.1.4.1.37746"
RUC_OID = x509.ObjectIdentifier(f"{SECURITY_DATA_ARC}.3.11")
CEDULA_OID = x509.ObjectIdentifier(f"{SECURITY_DATA_ARC}.3.1")
LEGAL_NAME_OID = x509.ObjectIdentifier(f"{SECURITY_DATA_ARC}.3.10")


def _utf8(text: str) -> bytes:
    """DER UTF8String (short form: the values here are under 128 bytes)."""
    raw = text.encode()
    if len(raw) > 127:
        raise ValueError("value too long for a test certificate extension")
    return bytes([0x0C, len(raw)]) + raw


@functools.lru_cache(maxsize=1)
def authority() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The test certification authority (made once per process): its key and certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, TEST_AUTHORITY),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CERTIFICADOS DE PRUEBA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AUTOFACTURA (PRUEBAS)"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "EC"),
        ]
    )
    start = datetime(2000, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start.replace(year=2100))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_test_p12(
    ruc: str | None,
    legal_name: str,
    password: str,
    *,
    now: datetime | None = None,
    years: int = 2,
    signing: bool = True,
    with_key: bool = True,
    cedula: str | None = None,
) -> bytes:
    """A test .p12 for `ruc`: an RSA-2048 key and its certificate, issued by the test authority
    (whose certificate goes along, as Ecuadorian .p12 files carry their chain), valid from `now`
    (to the second) for `years` years, encrypted under `password`. `ruc=None` leaves the RUC
    out (a natural person's certificate carrying only the holder's `cedula`, or a bad one).
    """
    now = now or datetime.now(UTC)
    ca_key, ca_cert = authority()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid_from = now.replace(microsecond=0)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, legal_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, legal_name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "EC"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(_add_years(valid_from, years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=signing,
                content_commitment=signing,
                key_encipherment=not signing,
                data_encipherment=not signing,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.UnrecognizedExtension(LEGAL_NAME_OID, _utf8(legal_name)), False)
    )
    if ruc is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(RUC_OID, _utf8(ruc)), False)
    if cedula is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(CEDULA_OID, _utf8(cedula)), False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(
        name=legal_name.encode(),
        key=key if with_key else None,
        cert=cert,
        cas=[ca_cert],
        encryption_algorithm=BestAvailableEncryption(password.encode()),
    )


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)
