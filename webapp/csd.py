"""An issuer's CSD: stored with its .key and password encrypted at rest, loaded as a Signer.

    signer = issuer_signer(issuer)            # inside an app context (DATA_KEY / SECRET_KEY)
    signer = issuer_signer(issuer, fernet)    # anywhere, with webapp.crypto.cipher(...)
    signer.sign_sha256(cadena_original)

Loading decrypts the key (PBKDF2) and parses the certificate; signers are cached per process,
keyed by the stored bytes, so a replaced CSD is picked up at once.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet
from OpenSSL.crypto import Error as OpenSSLError
from satcfdi.exceptions import CFDIError
from satcfdi.models import Signer
from satcfdi.models.certificate import CertificateType

from webapp import crypto
from webapp.models import Issuer


class CSDError(ValueError):
    """The CSD cannot be used: missing, wrong password, not a CSD, or not the issuer's."""


def _fernet(fernet: Fernet | None) -> Fernet:
    return fernet or crypto.cipher_from_config(_app_config())


def _app_config():
    from flask import current_app

    return current_app.config


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
) -> Signer:
    """Check a CSD belongs to `issuer` and store it, key and password encrypted.

    Raises CSDError when the files or password do not load, the certificate is a FIEL rather
    than a CSD, or its RFC is not the issuer's. Returns the Signer.
    """
    signer = load_signer(certificate, key, password)
    if signer.type is not CertificateType.CSD:
        raise CSDError("the certificate is not a CSD (a FIEL cannot sign invoices)")
    if signer.rfc != issuer.rfc:
        raise CSDError(f"the certificate belongs to RFC {signer.rfc}, not {issuer.rfc}")
    cert = signer.certificate.to_cryptography()
    f = _fernet(fernet)
    issuer.csd_certificate = certificate
    issuer.csd_key_encrypted = crypto.encrypt_with(f, key)
    issuer.csd_password_encrypted = crypto.encrypt_with(f, password.encode())
    issuer.csd_number = signer.certificate_number
    issuer.csd_valid_from = cert.not_valid_before_utc
    issuer.csd_valid_to = cert.not_valid_after_utc
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
