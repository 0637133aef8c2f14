"""Who is signed in: Flask-Login with server-side revocation.

The session holds "account id:session version"; bumping Account.session_version (password
change, reset, "sign out everywhere") makes every older session load as anonymous.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import current_app, redirect, request, session, url_for
from flask_login import UserMixin, current_user, login_user, logout_user

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
    session["started"] = session["seen"] = int(time.time())


def enforce_lifetime():
    """End a session idle for SESSION_IDLE_MINUTES or older than SESSION_MAX_HOURS."""
    if request.endpoint == "static" or not current_user.is_authenticated:
        return None
    now = int(time.time())
    config = current_app.config
    started, seen = session.get("started", 0), session.get("seen", 0)
    if (
        now - seen > config["SESSION_IDLE_MINUTES"] * 60
        or now - started > config["SESSION_MAX_HOURS"] * 3600
    ):
        logout_user()
        session.clear()
        return redirect(url_for("accounts.sign_in", caducada=1), 303)
    if now - seen >= 30:  # refresh at most every 30 s: fewer cookie rewrites
        session["seen"] = now
    return None
