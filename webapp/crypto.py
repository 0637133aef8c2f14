"""Encryption at rest for secrets the app must read back (a CSD's .key and its password).

Data is sealed with Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived with
HKDF-SHA256 from configuration:

- ``DATA_KEY`` when set: any string (e.g. ``python -c "import secrets;
  print(secrets.token_urlsafe(32))"``); it is never used as is, only through HKDF, so its format
  does not matter, its entropy does. Set it in production, keep it out of the database backups
  and keep it stable: data sealed under it cannot be read under another key.
- otherwise ``SECRET_KEY``, through HKDF with a different `info`, so the Fernet key never equals
  anything else derived from SECRET_KEY. Rotating SECRET_KEY then makes stored CSDs unreadable:
  the operator re-uploads them (or sets DATA_KEY before rotating).

The core (`cipher`, `encrypt_with`, `decrypt_with`) is Flask-free; `encrypt` and `decrypt` read
the key from the current app's configuration when none is given.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"autofactura/encryption-at-rest"
_INFO_DATA_KEY = b"autofactura v1 fernet key from DATA_KEY"
_INFO_SECRET_KEY = b"autofactura v1 fernet key from SECRET_KEY"


class DecryptionError(Exception):
    """Stored data could not be decrypted: wrong key (DATA_KEY/SECRET_KEY changed) or tampering."""


def _derive(material: str, info: bytes) -> bytes:
    if not material:
        raise ValueError("empty key material: set DATA_KEY or SECRET_KEY")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))


@functools.lru_cache(maxsize=8)
def cipher(secret: str, *, from_secret_key: bool = False) -> Fernet:
    """The Fernet for key material `secret` (a DATA_KEY; or a SECRET_KEY with from_secret_key).

    Cached: the same material gives the same object, which callers may use as a cache key.
    """
    return Fernet(_derive(secret, _INFO_SECRET_KEY if from_secret_key else _INFO_DATA_KEY))


def cipher_from_config(config: Mapping[str, Any]) -> Fernet:
    """The Fernet of an app configuration: DATA_KEY when set, else derived from SECRET_KEY."""
    if data_key := config.get("DATA_KEY"):
        return cipher(data_key)
    return cipher(config.get("SECRET_KEY") or "", from_secret_key=True)


def encrypt_with(fernet: Fernet, data: bytes) -> bytes:
    """`data` sealed (encrypted and authenticated); the token is URL-safe base64 bytes."""
    return fernet.encrypt(data)


def decrypt_with(fernet: Fernet, token: bytes) -> bytes:
    """The plain bytes of `token`; DecryptionError when sealed under another key or altered."""
    try:
        return fernet.decrypt(token)
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt stored data: it was encrypted under another key "
            "(DATA_KEY or SECRET_KEY changed) or it was altered"
        ) from exc


def _current_cipher() -> Fernet:
    from flask import current_app

    return cipher_from_config(current_app.config)


def encrypt(data: bytes, fernet: Fernet | None = None) -> bytes:
    """Seal `data` under `fernet`, by default the current app's (DATA_KEY or SECRET_KEY)."""
    return encrypt_with(fernet or _current_cipher(), data)


def decrypt(token: bytes, fernet: Fernet | None = None) -> bytes:
    """Open `token` with `fernet`, by default the current app's; DecryptionError on a wrong key."""
    return decrypt_with(fernet or _current_cipher(), token)
