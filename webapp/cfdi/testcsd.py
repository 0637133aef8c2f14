"""Test CSDs shaped like the SAT's, for the demo merchant, the samples and the tests.

A certificate from `make_test_csd` reads like a real CSD to satcfdi (type CSD, RFC, legal name,
20-digit certificate number) and signs CFDIs that verify against it, but its issuer is a made-up
authority labelled as such: a PAC (even a sandbox) or the SAT would reject it, as they must.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from webapp.cfdi.certificates import NAME_OID, key_der, sat_style_certificate

TEST_AUTHORITY = "AUTOFACTURA AUTORIDAD CERTIFICADORA DE PRUEBA - SIN VALIDEZ"
# SAT's own numbers start 00001 (production) or 30001 (its test CSDs); ours never collide.
TEST_NUMBER_PREFIX = "99999"


def random_certificate_number() -> str:
    """A 20-digit certificate number (NoCertificado) under the test prefix."""
    digits = 20 - len(TEST_NUMBER_PREFIX)
    return TEST_NUMBER_PREFIX + f"{secrets.randbelow(10**digits):0{digits}d}"


def make_test_csd(
    rfc: str,
    legal_name: str,
    password: str,
    *,
    branch: str = "MATRIZ",
    number: str | None = None,
    now: datetime | None = None,
    years: int = 4,
    fiel: bool = False,
) -> tuple[bytes, bytes]:
    """A test CSD for `rfc`: the certificate (.cer, DER) and the private key (.key).

    The key is RSA-2048 as encrypted PKCS#8 DER under `password`, like SAT's .key files. The
    certificate has SAT's subject layout (CN, name and O = legal name, x500UniqueIdentifier = RFC,
    serialNumber, OU = branch), the certificate number as its serial, exactly two extensions
    (what makes satcfdi call it a CSD rather than a FIEL), a SHA-256 signature by its own key,
    and a validity from yesterday (the day before `now`) for `years` years.

    Tests make the certificates a merchant must not upload with the same call: an expired one
    (`now` years ago), one not valid yet (`now` in the future), and a FIEL (`fiel=True`: the
    four extensions of an e.firma instead of a CSD's two).
    """
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, legal_name),
            x509.NameAttribute(NAME_OID, legal_name),
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
    certificate = sat_style_certificate(
        key,
        subject=subject,
        issuer=issuer,
        number=number or random_certificate_number(),
        valid_from=valid_from,
        valid_to=_add_years(valid_from, years),
        fiel=fiel,
    )
    return certificate, key_der(key, password)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)
