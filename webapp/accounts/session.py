"""Who is signed in: Flask-Login with server-side revocation.

The session holds "account id:session version"; bumping Account.session_version (password
change, reset, "sign out everywhere") makes every older session load as anonymous.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import session
from flask_login import UserMixin, login_user

from webapp.extensions import db, login_manager
from webapp.models import Account


class SignedIn(UserMixin):
    def __init__(self, account: Account):
        self.account = account

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_version}"


@login_manager.user_loader
def _load(user_id: str) -> SignedIn | None:
    try:
        account_id, version = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    account = db.session.get(Account, account_id)
    if account is None or account.session_version != version or not account.verified:
        return None
    return SignedIn(account)


def sign_in(account: Account) -> None:
    """A fresh session (no fixation) for `account`."""
    session.clear()
    account.last_login_at = datetime.now(UTC)
    login_user(SignedIn(account))
