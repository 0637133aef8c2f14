"""Who is signed in: Flask-Login over sessions kept on the server.

The cookie holds "account id:session version:token"; the session is valid while its row in
`signed_session` exists (webapp.security.sessions), so signing out ends it for every copy of
the cookie. Bumping Account.session_version (password change, reset) still ends every older
session at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import current_app, redirect, request, session, url_for
from flask_login import UserMixin, current_user, login_user, logout_user

from webapp.extensions import db, login_manager
from webapp.models import Account
from webapp.security import sessions


class SignedIn(UserMixin):
    def __init__(self, account: Account, token: str):
        self.account = account
        self.token = token

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_version}:{self.token}"


@login_manager.user_loader
def _load(user_id: str) -> SignedIn | None:
    account_id, version, token = (user_id.split(":", 2) + ["", ""])[:3]
    if not (account_id.isdigit() and version.isdigit() and token):
        return None
    account = sessions.load(db.session, Account, int(account_id), token)
    if account is None or account.session_version != int(version) or not account.verified:
        return None
    return SignedIn(account, token)


def sign_in(account: Account) -> None:
    """A fresh session (no fixation) for `account`, opened on the server."""
    session.clear()
    now = datetime.now(UTC)
    account.last_login_at = now
    max_age = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    login_user(SignedIn(account, sessions.open_session(db.session, account, now, max_age)))
    session["started"] = session["seen"] = int(time.time())


def sign_out() -> None:
    """End this browser's customer session on the server, then in the browser (a staff
    session in the same browser is left alone)."""
    if current_user.is_authenticated:
        sessions.end(db.session, current_user.token)
        db.session.commit()
    logout_user()
    session.pop("started", None)
    session.pop("seen", None)


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
        sign_out()
        session.clear()
        return redirect(url_for("accounts.sign_in", caducada=1), 303)
    if now - seen >= 30:  # refresh at most every 30 s: fewer cookie rewrites
        session["seen"] = now
    return None
