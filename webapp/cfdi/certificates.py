"""X.509 certificates laid out as the SAT issues them (CSDs, and the sandbox PAC's)."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# X.520 "name" (2.5.4.41), which SAT repeats after CN; cryptography has no constant for it.
NAME_OID = x509.ObjectIdentifier("2.5.4.41")


def serial_from_number(number: str) -> int:
    """The X.509 serial SAT uses for a certificate number: the big-endian ASCII of its digits."""
    if len(number) != 20 or not number.isdigit():
        raise ValueError("a certificate number has 20 digits")
    return int.from_bytes(number.encode("ascii"), "big")


def sat_style_certificate(
    key: rsa.RSAPrivateKey,
    *,
    subject: x509.Name,
    issuer: x509.Name,
    number: str,
    valid_from: datetime,
    valid_to: datetime,
    signing_key: rsa.RSAPrivateKey | None = None,
    fiel: bool = False,
) -> bytes:
    """A certificate (DER) for `key` with the 20-digit `number` as its serial and exactly the
    two extensions of a CSD (what makes satcfdi call it a CSD rather than a FIEL): CA:FALSE and
    digitalSignature + nonRepudiation. Signed with SHA-256 by `signing_key` (default: itself).

    With `fiel`, a FIEL (e.firma) instead: two more extensions (extended key usage and the
    subject key identifier), four in all, which is how satcfdi tells one from a CSD."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial_from_number(number))
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
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
    )
    if fiel:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [
                    x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION,
                    x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                ]
            ),
            critical=False,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    certificate = builder.sign(signing_key or key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.DER)


def key_der(key: rsa.RSAPrivateKey, password: str | None = None) -> bytes:
    """The key as PKCS#8 DER: encrypted under `password` like SAT's .key files, or plain."""
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, encryption
    )
