"""The kiosk in each request: which kiosk this browser is, and what that changes.

A request with a valid device cookie is a kiosk's (`g.kiosk`, read through
webapp.kiosk_context.current): its responses are never
stored (`Cache-Control: no-store`), nobody is signed in, the account pages and the home page
lead to the kiosk's start screen, and a customer's session on a kiosk idle longer than
KIOSK_IDLE_SECONDS plus KIOSK_COUNTDOWN_SECONDS is wiped on its next request (so nothing
survives a closed browser). The kiosk's last request is kept on its row, not in the session:
no request writes the session cookie just for that, so none overwrites what a concurrent one
saved.
An unknown or revoked cookie is cleared, with the session it kept: the browser is a normal
one again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, current_app, g, request, session, url_for
from flask_login import current_user, logout_user

from webapp.extensions import db
from webapp.htmx import redirect_any
from webapp.i18n import COOKIE as LANGUAGE_COOKIE
from webapp.kiosk import devices
from webapp.kiosk_context import current  # noqa: F401 (web.current() in the kiosk's routes)
from webapp.security.web import cookie_options

COOKIE = "kiosco"
COOKIE_MAX_AGE = 5 * 365 * 86400
# On a kiosk these lead to the start screen: no accounts, no other entry to the flow.
ELSEWHERE_BLUEPRINTS = {"accounts", "panel", "profile", "devmail"}
ELSEWHERE_ENDPOINTS = {"main.index", "invoicing.start"}
# Where a wiped session goes on as asked, rather than to the start screen.
WIPE_SAFE_ENDPOINTS = {"kiosk.start", "kiosk.finish", "kiosk.enrol", "kiosk.still_here"}


def wipe(language: bool = True) -> None:
    """Forget the customer: the whole session (flow, invoices, CSRF token) and, with
    `language`, the language they chose. The device cookie is not in the session and stays."""
    session.clear()
    if language:
        g.kiosk_wiped = True


def set_device_cookie(response: Response, value: str) -> None:
    g.kiosk_forget = False  # a stale cookie is being replaced, not cleared
    response.set_cookie(COOKIE, value, max_age=COOKIE_MAX_AGE, **cookie_options())


def recognise():
    """before_app_request: set `g.kiosk`, and apply the kiosk's rules."""
    g.kiosk = None
    value = request.cookies.get(COOKIE)
    if request.endpoint == "static" or not value:
        return None
    now = datetime.now(UTC)
    kiosk = devices.lookup(db.session, value)
    if kiosk is None:
        g.kiosk_forget = True
        session.clear()  # what the kiosk kept is not carried into the normal site
        return None
    from webapp.invoicing import flow  # here: webapp.invoicing imports this module

    config = current_app.config
    # Past the browser's own countdown, plus the granularity of last_seen_at.
    limit = config["KIOSK_IDLE_SECONDS"] + config["KIOSK_COUNTDOWN_SECONDS"]
    expired = devices.idle_seconds(kiosk, now) > limit + devices.SEEN_EVERY.total_seconds()
    if devices.note_seen(kiosk, now):
        db.session.commit()
    g.kiosk = kiosk
    if current_user.is_authenticated:
        logout_user()  # a kiosk has no accounts: a customer's session is not used
    if expired and (flow.KEY in session or flow.MINE in session):
        wipe()
        if request.endpoint not in WIPE_SAFE_ENDPOINTS:
            return redirect_any(url_for("kiosk.start", expirado=1))
    if request.blueprint in ELSEWHERE_BLUEPRINTS or request.endpoint in ELSEWHERE_ENDPOINTS:
        return redirect_any(url_for("kiosk.start"))
    return None


def after(response: Response) -> Response:
    """after_app_request: a kiosk's answers are never stored; forgotten cookies cleared."""
    if g.get("kiosk_forget"):
        response.delete_cookie(COOKIE, httponly=True, secure=request.is_secure, samesite="Lax")
    if g.get("kiosk") is not None:
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
    if g.get("kiosk_wiped"):
        response.delete_cookie(LANGUAGE_COOKIE, httponly=True, samesite="Lax")
    return response


def template_context() -> dict:
    return {"kiosk": g.get("kiosk")}
