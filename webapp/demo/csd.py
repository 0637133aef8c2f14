"""Test CSDs shaped like the SAT's, for the demo merchant and the tests (no Flask).

A certificate from `make_test_csd` reads like a real CSD to satcfdi (type CSD, RFC, legal name,
20-digit certificate number) and signs CFDIs that verify against it, but its issuer is a made-up
authority labelled as such: a PAC (even a sandbox) or the SAT would reject it, as they must.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TEST_AUTHORITY = "AUTOFACTURA AUTORIDAD CERTIFICADORA DE PRUEBA - SIN VALIDEZ"
# SAT's own numbers start 00001 (production) or 30001 (its test CSDs); ours never collide.
TEST_NUMBER_PREFIX = "99999"
# X.520 "name" (2.5.4.41), which SAT repeats after CN; cryptography has no constant for it.
_NAME_OID = x509.ObjectIdentifier("2.5.4.41")


def random_certificate_number() -> str:
    """A 20-digit certificate number (NoCertificado) under the test prefix."""
    digits = 20 - len(TEST_NUMBER_PREFIX)
    return TEST_NUMBER_PREFIX + f"{secrets.randbelow(10**digits):0{digits}d}"


def serial_from_number(number: str) -> int:
    """The X.509 serial SAT uses for a certificate number: the big-endian ASCII of its digits."""
    if len(number) != 20 or not number.isdigit():
        raise ValueError("a certificate number has 20 digits")
    return int.from_bytes(number.encode("ascii"), "big")


def make_test_csd(
    rfc: str,
    legal_name: str,
    password: str,
    *,
    branch: str = "MATRIZ",
    number: str | None = None,
    now: datetime | None = None,
    years: int = 4,
) -> tuple[bytes, bytes]:
    """A test CSD for `rfc`: the certificate (.cer, DER) and the private key (.key).

    The key is RSA-2048 as encrypted PKCS#8 DER under `password`, like SAT's .key files. The
    certificate has SAT's subject layout (CN, name and O = legal name, x500UniqueIdentifier = RFC,
    serialNumber, OU = branch), the certificate number as its serial, exactly two extensions
    (what makes satcfdi call it a CSD rather than a FIEL), a SHA-256 signature by its own key,
    and a validity from yesterday for `years` years.
    """
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, legal_name),
            x509.NameAttribute(_NAME_OID, legal_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, legal_name),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, rfc),
            # Persona moral: " / CURP of the legal representative"; none for a test CSD.
            x509.NameAttribute(NameOID.SERIAL_NUMBER, " / "),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, branch),
        ]
    )
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, TEST_AUTHORITY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AUTOFACTURA (PRUEBAS)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CERTIFICADOS DE PRUEBA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
        ]
    )
    valid_from = (now - timedelta(days=1)).replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial_from_number(number or random_certificate_number()))
        .not_valid_before(valid_from)
        .not_valid_after(_add_years(valid_from, years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return certificate.public_bytes(serialization.Encoding.DER), key_der


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)
