"""Encryption at rest for secrets the app must read back (a CSD's .key and its password, an
issuer's PAC credentials).

Data is sealed with Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived with
HKDF-SHA256 from ``DATA_KEY``, a setting of its own: from the environment, else generated once
into ``instance/data_key`` (webapp.config). Any string will do (e.g. ``python -c "import
secrets; print(secrets.token_urlsafe(32))"``); it is only used through HKDF, so its format does
not matter, its entropy does. Back it up apart from the database: without it the stored CSDs
cannot be read.

Before DATA_KEY was its own setting, an installation without it sealed data under a key derived
from ``SECRET_KEY`` (through HKDF with another `info`, so that key never equals anything else
derived from SECRET_KEY). Such data still opens: the app's cipher (`cipher_from_config`)
encrypts under DATA_KEY and decrypts under DATA_KEY, then under the SECRET_KEY derivation.
``flask --app webapp.app data-key rotate`` (webapp.datakey) re-encrypts every stored secret
under the current DATA_KEY, after which SECRET_KEY can change freely; with ``--old-key`` it
moves data from a previous DATA_KEY to the current one.

The core (`cipher`, `keyring`, `encrypt_with`, `decrypt_with`) is Flask-free; `encrypt` and
`decrypt` use the current app's configuration when no cipher is given.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"autofactura/encryption-at-rest"
_INFO_DATA_KEY = b"autofactura v1 fernet key from DATA_KEY"
_INFO_SECRET_KEY = b"autofactura v1 fernet key from SECRET_KEY"

# What encrypts and decrypts: one key, or one that encrypts and several that decrypt.
Cipher = Fernet | MultiFernet


class DecryptionError(Exception):
    """Stored data could not be decrypted: no key of the cipher opens it (DATA_KEY changed, or
    it was sealed under a SECRET_KEY that has changed since) or it was altered."""


def _derive(material: str, info: bytes) -> bytes:
    if not material:
        raise ValueError("empty key material: set DATA_KEY (or SECRET_KEY)")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))


@functools.lru_cache(maxsize=8)
def cipher(secret: str, *, from_secret_key: bool = False) -> Fernet:
    """The Fernet for key material `secret` (a DATA_KEY; or a SECRET_KEY with from_secret_key).

    Cached: the same material gives the same object, which callers may use as a cache key.
    """
    return Fernet(_derive(secret, _INFO_SECRET_KEY if from_secret_key else _INFO_DATA_KEY))


@functools.lru_cache(maxsize=8)
def keyring(data_key: str, secret_key: str | None = None) -> Cipher:
    """The cipher that encrypts under `data_key` and decrypts under `data_key`, then under the
    legacy derivation of `secret_key` (when given).

    Cached like `cipher`: the same arguments give the same object.
    """
    if not secret_key:
        return cipher(data_key)
    return MultiFernet([cipher(data_key), cipher(secret_key, from_secret_key=True)])


def cipher_from_config(config: Mapping[str, Any]) -> Cipher:
    """The cipher of an app configuration: encrypts under DATA_KEY; decrypts under DATA_KEY,
    then under the legacy SECRET_KEY derivation.

    A configuration without DATA_KEY (only possible when a caller builds the configuration by
    hand: webapp.config always sets one) falls back to the SECRET_KEY derivation alone.
    """
    secret_key = config.get("SECRET_KEY") or None
    if data_key := config.get("DATA_KEY"):
        return keyring(data_key, secret_key)
    return cipher(secret_key or "", from_secret_key=True)


def encrypt_with(fernet: Cipher, data: bytes) -> bytes:
    """`data` sealed (encrypted and authenticated); the token is URL-safe base64 bytes."""
    return fernet.encrypt(data)


def decrypt_with(fernet: Cipher, token: bytes) -> bytes:
    """The plain bytes of `token`; DecryptionError when no key of `fernet` opens it."""
    try:
        return fernet.decrypt(token)
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt stored data: it was encrypted under another key (DATA_KEY "
            "changed, or it predates DATA_KEY and SECRET_KEY changed since) or it was altered"
        ) from exc


current_cipher: Callable[[], Cipher] | None = None
"""The running app's cipher, for callers that pass none: set by the app (webapp.wiring), so
this module needs no Flask."""


def encryption_cipher() -> Cipher:
    """The running app's cipher (see current_cipher)."""
    if current_cipher is None:
        raise RuntimeError("no app cipher: pass one, or build the app (webapp.app.create_app)")
    return current_cipher()


def encrypt(data: bytes, fernet: Cipher | None = None) -> bytes:
    """Seal `data` under `fernet`, by default the current app's (DATA_KEY)."""
    return encrypt_with(fernet or encryption_cipher(), data)


def decrypt(token: bytes, fernet: Cipher | None = None) -> bytes:
    """Open `token` with `fernet`, by default the current app's; DecryptionError on a wrong key."""
    return decrypt_with(fernet or encryption_cipher(), token)
