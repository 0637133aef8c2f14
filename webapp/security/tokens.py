"""Signed links for email: a salt per purpose, an expiry, and single use.

A token carries the account id and a fingerprint of the account's state that the link's use
changes (the password hash, the verification time, the session version): once the link has
been used, or the password changed by any means, the fingerprint differs and the link is dead.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from webapp.models import Account, StaffMember

PURPOSES = {
    "verify": "autofactura-verify-email",
    "reset": "autofactura-reset-password",
    "question": "autofactura-secret-question",
    "recover-step": "autofactura-recovery-step",
    "staff-password": "autofactura-staff-password",  # a staff recovery link
    "staff-invitation": "autofactura-staff-invitation",
}


def fingerprint(account: Account | StaffMember) -> str:
    verified_at = getattr(account, "email_verified_at", None)
    state = "|".join(
        [
            account.email,
            account.password_hash or "",
            verified_at.isoformat() if verified_at else "",
            str(account.session_version),
            getattr(account, "secret_answer_hash", None) or "",
        ]
    )
    return hashlib.sha256(state.encode()).hexdigest()[:24]


def make_token(secret: str, purpose: str, account: Account | StaffMember) -> str:
    return URLSafeTimedSerializer(secret, salt=PURPOSES[purpose]).dumps(
        {"a": account.id, "f": fingerprint(account)}
    )


def read_token(secret: str, purpose: str, token: str, max_age: int) -> tuple[int, str] | None:
    """(account id, fingerprint) of a valid token; None if altered, expired or another
    purpose's. The caller compares the fingerprint with the account's current one."""
    try:
        data = URLSafeTimedSerializer(secret, salt=PURPOSES[purpose]).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), int):
        return None
    return data["a"], str(data.get("f"))


def sign_data(secret: str, purpose: str, data: dict) -> str:
    """A signed token of plain data (no account state), e.g. a step of a form."""
    return URLSafeTimedSerializer(secret, salt=PURPOSES[purpose]).dumps(data)


def read_data(secret: str, purpose: str, token: str, max_age: int) -> dict | None:
    try:
        data = URLSafeTimedSerializer(secret, salt=PURPOSES[purpose]).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    return data if isinstance(data, dict) else None
