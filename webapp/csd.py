"""An issuer's CSD: stored with its .key and password encrypted at rest, loaded as a Signer.

    signer = issuer_signer(issuer)            # inside an app context (DATA_KEY / SECRET_KEY)
    signer = issuer_signer(issuer, fernet)    # anywhere, with webapp.crypto.cipher(...)
    signer.sign_sha256(cadena_original)

    signer, info = check_csd("TDG150312K46", cer, key, password, now=datetime.now(UTC))
    store_csd(issuer, cer, key, password, now=datetime.now(UTC))   # checks, then stores

`check_csd` judges an upload before anything is stored and says which file is at fault
(CSDError.field: "cer", "key" or "password"; CSDError.code: see CSD_PROBLEMS).

Loading decrypts the key (PBKDF2) and parses the certificate; signers are cached per process,
keyed by the stored bytes, so a replaced CSD is picked up at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.serialization import load_der_private_key
from OpenSSL import crypto as openssl
from OpenSSL.crypto import Error as OpenSSLError
from satcfdi.exceptions import CFDIError
from satcfdi.models import Signer
from satcfdi.models.certificate import CertificateType

from webapp import crypto
from webapp.models import Issuer

EXPIRY_WARNING_DAYS = 30
"""A CSD that expires within this many days is flagged on the settings page."""

CSD_PROBLEMS = {
    "cer_format": "cer",  # not an X.509 certificate (DER or PEM)
    "key_format": "key",  # not an encrypted PKCS#8 private key (SAT's .key)
    "password": "password",  # the password does not open the .key
    "mismatch": "key",  # the .key is not the certificate's
    "fiel": "cer",  # a FIEL (e.firma), which cannot sign invoices
    "not_csd": "cer",  # neither a CSD nor a FIEL
    "rfc": "cer",  # the certificate names another RFC
    "not_yet_valid": "cer",  # its validity has not started
    "expired": "cer",  # its validity is over
}
"""Problem code → the uploaded field at fault."""


class CSDError(ValueError):
    """The CSD cannot be used: missing, wrong password, not a CSD, or not the issuer's.

    `code` (a key of CSD_PROBLEMS, or "missing") and `field` say what and where;
    `valid_from`/`valid_to` are set for "expired" and "not_yet_valid"; `rfc` for "rfc".
    """

    def __init__(
        self,
        message: str,
        code: str = "invalid",
        *,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        rfc: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.field = CSD_PROBLEMS.get(code, "cer")
        self.valid_from, self.valid_to, self.rfc = valid_from, valid_to, rfc


@dataclass(frozen=True)
class CsdInfo:
    """What may be shown of a CSD: never its key nor its password."""

    number: str
    rfc: str
    legal_name: str | None
    valid_from: datetime
    valid_to: datetime

    def days_left(self, now: datetime) -> int:
        return (self.valid_to - now) // timedelta(days=1)

    def expires_soon(self, now: datetime, days: int = EXPIRY_WARNING_DAYS) -> bool:
        """Valid now but not `days` days from now."""
        return now < self.valid_to <= now + timedelta(days=days)


def stored_info(issuer: Issuer) -> CsdInfo | None:
    """The stored CSD's public data, or None when the issuer has none."""
    if not (issuer.csd_number and issuer.csd_valid_from and issuer.csd_valid_to):
        return None
    return CsdInfo(issuer.csd_number, issuer.rfc, None, issuer.csd_valid_from, issuer.csd_valid_to)


def _certificate(certificate: bytes) -> openssl.X509:
    for filetype in (openssl.FILETYPE_ASN1, openssl.FILETYPE_PEM):
        try:
            return openssl.load_certificate(filetype, certificate)
        except (OpenSSLError, ValueError, TypeError):
            continue
    raise CSDError("the .cer is not an X.509 certificate", "cer_format")


def _encrypted(key: bytes) -> bool:
    """Whether `key` is a DER private key that needs a password (SAT's .key files do);
    CSDError when it is no private key at all."""
    try:
        load_der_private_key(key, None)
    except TypeError:  # it asks for a password
        return True
    except ValueError as exc:
        raise CSDError(f"the .key is not a private key: {exc}", "key_format") from exc
    return False


def check_csd(
    rfc: str, certificate: bytes, key: bytes, password: str, *, now: datetime | None = None
) -> tuple[Signer, CsdInfo]:
    """Judge an uploaded CSD for the issuer of `rfc`: the Signer and what may be shown.

    In order: the .cer is a certificate, the .key an encrypted private key, the password
    opens it, the key is the certificate's, the certificate a CSD (not a FIEL) of `rfc`,
    and, when `now` is given, valid at `now`. Raises CSDError with the first problem.
    """
    x509 = _certificate(certificate)
    if not _encrypted(key):
        raise CSDError("the .key is not encrypted, SAT's always are", "key_format")
    try:
        private = load_der_private_key(key, password.encode())
    except (ValueError, TypeError) as exc:
        raise CSDError(f"cannot open the .key with this password: {exc}", "password") from exc
    try:
        signer = Signer(x509, private)
    except CFDIError as exc:
        raise CSDError(f"the .key does not match the certificate: {exc}", "mismatch") from exc
    if signer.type is not CertificateType.CSD:
        code = "fiel" if signer.type is CertificateType.Fiel else "not_csd"
        raise CSDError("the certificate is not a CSD (a FIEL cannot sign invoices)", code)
    cert_rfc = str(signer.rfc or "")
    if cert_rfc != rfc:
        raise CSDError(f"the certificate belongs to RFC {cert_rfc}, not {rfc}", "rfc", rfc=cert_rfc)
    cert = x509.to_cryptography()
    info = CsdInfo(
        number=signer.certificate_number,
        rfc=cert_rfc,
        legal_name=signer.legal_name,
        valid_from=cert.not_valid_before_utc,
        valid_to=cert.not_valid_after_utc,
    )
    if now is not None:
        dates = {"valid_from": info.valid_from, "valid_to": info.valid_to}
        if now < info.valid_from:
            raise CSDError("the certificate is not valid yet", "not_yet_valid", **dates)
        if now >= info.valid_to:
            raise CSDError("the certificate has expired", "expired", **dates)
    return signer, info


def _fernet(fernet: Fernet | None) -> Fernet:
    return fernet or crypto.encryption_cipher()


def load_signer(certificate: bytes, key: bytes, password: str) -> Signer:
    """A satcfdi Signer from a .cer (DER), a .key (encrypted PKCS#8 DER) and its password."""
    try:
        return Signer.load(certificate=certificate, key=key, password=password)
    except (ValueError, TypeError) as exc:  # wrong password or malformed .key
        raise CSDError(f"cannot open the .key with this password: {exc}") from exc
    except OpenSSLError as exc:
        raise CSDError(f"the .cer is not a DER certificate: {exc}") from exc
    except CFDIError as exc:  # the key does not match the certificate
        raise CSDError(str(exc)) from exc


def store_csd(
    issuer: Issuer,
    certificate: bytes,
    key: bytes,
    password: str,
    fernet: Fernet | None = None,
    *,
    now: datetime | None = None,
) -> Signer:
    """Check a CSD belongs to `issuer` (check_csd; its validity too when `now` is given) and
    store it, key and password encrypted. Returns the Signer.

    The certificate is stored as DER whatever the upload's encoding.
    """
    signer, info = check_csd(issuer.rfc, certificate, key, password, now=now)
    f = _fernet(fernet)
    issuer.csd_certificate = signer.certificate_bytes()
    issuer.csd_key_encrypted = crypto.encrypt_with(f, key)
    issuer.csd_password_encrypted = crypto.encrypt_with(f, password.encode())
    issuer.csd_number = info.number
    issuer.csd_valid_from = info.valid_from
    issuer.csd_valid_to = info.valid_to
    return signer


def issuer_signer(issuer: Issuer, fernet: Fernet | None = None) -> Signer:
    """The issuer's Signer, decrypting its stored CSD with `fernet` (default: the app's key).

    Raises CSDError when the issuer has no CSD, crypto.DecryptionError when the data key is
    not the one the CSD was stored under.
    """
    if not (issuer.csd_certificate and issuer.csd_key_encrypted and issuer.csd_password_encrypted):
        raise CSDError(f"issuer {issuer.rfc} has no CSD")
    return _cached_signer(
        bytes(issuer.csd_certificate),
        bytes(issuer.csd_key_encrypted),
        bytes(issuer.csd_password_encrypted),
        _fernet(fernet),
    )


@functools.lru_cache(maxsize=64)
def _cached_signer(certificate: bytes, key: bytes, password: bytes, f: Fernet) -> Signer:
    """Signer of stored (encrypted) bytes; `f` is cached by webapp.crypto.cipher, so it keys."""
    return load_signer(
        certificate, crypto.decrypt_with(f, key), crypto.decrypt_with(f, password).decode()
    )
