"""Who is signed in to the back office, and what they may see.

Staff sessions live beside customers' (a person may be both in one browser): the session
holds "staff id:session version:token" under its own key, with the same idle and absolute
lifetimes as customers' sessions. The session is kept on the server (webapp.security.sessions):
signing out deletes it, so a copy of the cookie is anonymous afterwards; bumping
StaffMember.session_version ends every older session.

    @bp.get("/sucursales")
    @staff_required(StaffRole.ISSUER_ADMIN)   # the operator is always allowed
    def branches(): issuer = scope.issuer() ...
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta

from flask import abort, current_app, g, redirect, request, session, url_for

from webapp.extensions import db
from webapp.models import StaffMember, StaffRole
from webapp.security import sessions

SESSION_KEY = "staff"
STARTED, SEEN = "staff_started", "staff_seen"


def current_staff() -> StaffMember | None:
    """The staff member signed in to the back office in this browser, or None."""
    if "staff_member" not in g:
        g.staff_member = _load()
    return g.staff_member


def _parts() -> tuple[int, int, str] | None:
    staff_id, version, token = (str(session.get(SESSION_KEY, "")).split(":", 2) + ["", ""])[:3]
    if not (staff_id.isdigit() and version.isdigit() and token):
        return None
    return int(staff_id), int(version), token


def _load() -> StaffMember | None:
    if (parts := _parts()) is None:
        return None
    staff_id, version, token = parts
    member = sessions.load(db.session, StaffMember, staff_id, token)
    if member is None or member.session_version != version or not member.verified:
        return None
    now = int(time.time())
    config = current_app.config
    if (
        now - session.get(SEEN, 0) > config["SESSION_IDLE_MINUTES"] * 60
        or now - session.get(STARTED, 0) > config["SESSION_MAX_HOURS"] * 3600
    ):
        sign_out()
        db.session.commit()
        g.staff_expired = True
        return None
    if now - session.get(SEEN, 0) >= 30:
        session[SEEN] = now
    return member


def sign_in(member: StaffMember) -> None:
    """A fresh back-office session for `member`, opened on the server (the customer's
    session, if any, is left alone)."""
    sign_out()
    now = datetime.now(UTC)
    member.last_login_at = now
    max_age = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    token = sessions.open_session(db.session, member, now, max_age)
    session[SESSION_KEY] = f"{member.id}:{member.session_version}:{token}"
    session[STARTED] = session[SEEN] = int(time.time())
    g.staff_member = member


def sign_out() -> None:
    """End this browser's back-office session on the server (the caller commits) and in the
    browser."""
    if (parts := _parts()) is not None:
        sessions.end(db.session, parts[2])
    for key in (SESSION_KEY, STARTED, SEEN, "admin_issuer"):
        session.pop(key, None)
    g.staff_member = None


def staff_required(*roles: StaffRole):
    """Only signed-in staff with one of `roles` (any role when none given; the platform
    operator always); others go to the sign-in page, or get 403."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            member = current_staff()
            if member is None:
                expired = 1 if g.get("staff_expired") else None
                return redirect(
                    url_for("admin.sign_in", next=request.full_path.rstrip("?"), caducada=expired),
                    303,
                )
            if roles and member.role is not StaffRole.OPERATOR and member.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate
