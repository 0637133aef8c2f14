"""Password hashing (argon2id) and the password rules of the security policy."""

from __future__ import annotations

import enum
import functools
import re
import secrets
import string
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from webapp.security.policy import SecurityPolicy

_hasher = PasswordHasher()  # argon2id with argon2-cffi's recommended parameters (RFC 9106)
# Verified against when the account does not exist, so that both take the same time.
_DUMMY_HASH = _hasher.hash("autofactura: no such account")


class PasswordProblem(enum.StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NO_UPPERCASE = "no_uppercase"
    NO_DIGIT = "no_digit"
    NO_PUNCTUATION = "no_punctuation"
    COMMON = "common"  # in the list of common passwords
    CONTEXT = "context"  # contains the RFC, the email or the site's name
    MISMATCH = "mismatch"  # confirmation differs


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the parameters changed and it should be stored instead)."""
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(stored) else None)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's list, plus common Spanish ones."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    spanish = {
        "contraseña",
        "contrasena",
        "contraseña1",
        "123456789a",
        "qwertyuiop",
        "teamo",
        "tequiero",
        "mexico",
        "mexico123",
        "mimamamemima",
        "factura",
        "facturas",
        "autofactura",
        "holamundo",
        "soloyo",
        "amorcito",
        "princesa",
        "corazon",
    }
    return frozenset(FREQUENCY_LISTS["passwords"]) | frozenset(spanish)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def check_password(
    password: str, confirmation: str | None, policy: SecurityPolicy, context: tuple[str, ...] = ()
) -> list[PasswordProblem]:
    """Everything wrong with `password` under `policy`, in the order to tell the person."""
    problems = []
    length = len(password)
    if length < policy.password_min_length:
        problems.append(PasswordProblem.TOO_SHORT)
    if length > policy.password_max_length:
        problems.append(PasswordProblem.TOO_LONG)
    if policy.password_composition:
        if not re.search(r"[A-ZÁÉÍÓÚÑÜ]", password):
            problems.append(PasswordProblem.NO_UPPERCASE)
        if not re.search(r"\d", password):
            problems.append(PasswordProblem.NO_DIGIT)
        if not re.search(r"[^\w\s]|_", password):
            problems.append(PasswordProblem.NO_PUNCTUATION)
    if policy.password_blocklist:
        folded = _fold(password)
        if folded in _common_passwords():
            problems.append(PasswordProblem.COMMON)
        words = {_fold(w) for c in (*context, "autofactura") for w in re.split(r"[@.\s]+", c)}
        if any(len(w) >= 4 and w in folded for w in words):
            problems.append(PasswordProblem.CONTEXT)
    if confirmation is not None and confirmation != password:
        problems.append(PasswordProblem.MISMATCH)
    return problems


def temporary_password(policy: SecurityPolicy) -> str:
    """A random password that meets `policy` (16 characters from all classes)."""
    alphabet = string.ascii_letters + string.digits + ".,;!?-_"
    while True:
        candidate = "".join(
            secrets.choice(alphabet) for _ in range(max(16, policy.password_min_length))
        )
        if not check_password(candidate, None, policy) and all(
            any(c in group for c in candidate)
            for group in (string.ascii_uppercase, string.digits, ".,;!?-_")
        ):
            return candidate
