"""An Ecuadorian issuer's signing certificate (.p12): stored with its password encrypted at
rest under the data key (webapp.crypto), like a CSD, and opened again to sign.

    key = store_p12(issuer, data, password, fernet, now=now)   # checks (P12Error), then stores
    key = signing_key(issuer, fernet)       # P12Error("missing"), DecryptionError

What may be shown of it afterwards is on the issuer (p12_subject, p12_valid_to), never the
file nor its password. Opened keys are cached per process by the stored bytes, so a replaced
certificate is used at once.
"""

from __future__ import annotations

import functools
from datetime import datetime

from webapp import crypto
from webapp.models import Issuer
from webapp.sri.p12 import P12Error, SigningKey, load_p12


def store_p12(
    issuer: Issuer, data: bytes, password: str, fernet=None, *, now: datetime | None = None
) -> SigningKey:
    """Check the .p12 signs for the issuer's RUC (and is valid at `now` when given), then
    store it and its password encrypted. Raises P12Error with the reason."""
    key = load_p12(data, password, issuer.rfc, now=now)
    cipher = fernet or crypto.encryption_cipher()
    issuer.p12_encrypted = crypto.encrypt_with(cipher, bytes(data))
    issuer.p12_password_encrypted = crypto.encrypt_with(cipher, password.encode())
    issuer.p12_subject = key.holder[:254]
    issuer.p12_valid_to = key.valid_to
    return key


def signing_key(issuer: Issuer, fernet=None) -> SigningKey:
    """The issuer's stored .p12, opened; P12Error("missing") when it has none,
    crypto.DecryptionError when it was stored under another data key."""
    if not (issuer.p12_encrypted and issuer.p12_password_encrypted):
        raise P12Error("El emisor no tiene certificado de firma electrónica (.p12).", "missing")
    cipher = fernet or crypto.encryption_cipher()
    data = crypto.decrypt_with(cipher, bytes(issuer.p12_encrypted))
    password = crypto.decrypt_with(cipher, bytes(issuer.p12_password_encrypted)).decode()
    return _opened(data, password, issuer.rfc)


@functools.lru_cache(maxsize=64)
def _opened(data: bytes, password: str, ruc: str) -> SigningKey:
    return load_p12(data, password, ruc)
