"""Security headers on every response: strict CSP and the usual hardening; personal pages
never stored; where a `next` or `volver` parameter may send the browser; the cookies'
attributes; the proxies in front whose forwarded headers are believed."""

from __future__ import annotations

import re
from urllib.parse import unquote

from flask import Flask, Response, abort, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def _is_fragment_request() -> bool:
    """An htmx request: its answer is swapped into a page and never becomes a document (a
    navigation cannot send the header), so the page's own policies govern it."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if _is_fragment_request():
        # Document-level policies do nothing on a fragment: leaving them out keeps a
        # fragment's answer within its 3 KB budget. Caches keep the two answers apart.
        response.vary.add("HX-Request")
        return response
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def _refuse_nul() -> None:
    """NUL is never valid input (and PostgreSQL text cannot hold it): a 400, not a 500."""
    if (
        "\x00" in request.path
        or any("\x00" in v for v in request.args.values())
        or any("\x00" in v for v in request.headers.values())
    ):
        abort(400)
    if request.method == "POST" and any(
        "\x00" in value for values in request.form.listvalues() for value in values
    ):
        abort(400)


# Pages that show someone's data: neither the browser nor a proxy may keep them (as the
# downloads already were). Whole blueprints, plus the invoicing pages of one invoice.
PERSONAL_BLUEPRINTS = frozenset({"accounts", "profile", "panel", "admin"})
PERSONAL_ENDPOINTS = frozenset({"invoicing.invoice", "invoicing.download", "invoicing.email"})
NO_STORE = "private, no-store"


def _not_stored(response: Response) -> Response:
    if request.blueprint in PERSONAL_BLUEPRINTS or request.endpoint in PERSONAL_ENDPOINTS:
        if "no-store" not in (response.headers.get("Cache-Control") or ""):
            response.headers["Cache-Control"] = NO_STORE
        response.headers.pop("Expires", None)
    return response


REDIRECT_PARAMETERS = ("next", "volver")


def _refuse_broken_targets() -> None:
    """A redirect target with CR or LF is no path of this site and cannot be a header: a 400
    before the view runs (and before, say, a password is checked)."""
    values = request.args.getlist
    form = request.form.getlist if request.method == "POST" else (lambda _name: [])
    for name in REDIRECT_PARAMETERS:
        for value in (*values(name), *form(name)):
            if "\r" in value or "\n" in value:
                abort(400)


def init_app(app: Flask) -> None:
    app.before_request(_refuse_nul)
    app.before_request(_refuse_broken_targets)
    # webapp.config sets HttpOnly and SameSite=Lax, and leaves Secure None unless the
    # environment says SESSION_COOKIE_SECURE: then it follows BASE_URL.
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["BASE_URL"].startswith("https://")
    trust_proxies(app)
    app.after_request(_headers)
    app.after_request(_not_stored)


def cookie_options() -> dict:
    """The attributes of the app's own cookies (language, branch…), the session cookie's:
    not for scripts, not sent on cross-site requests but top-level navigations, and only over
    https when the site is (BASE_URL, or SESSION_COOKIE_SECURE)."""
    config = current_app.config
    return {
        "httponly": True,
        "samesite": config["SESSION_COOKIE_SAMESITE"],
        "secure": bool(config["SESSION_COOKIE_SECURE"]),
    }


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES proxies, take the client's address and scheme from the headers
    they add: the last n X-Forwarded-For addresses were written by the proxies, so the n-th
    from the right is the client as the outermost proxy saw it (what a client sends itself
    lies further left and is ignored); likewise X-Forwarded-Proto. Rate limits and the audit
    log then see the client, and HSTS goes out when the proxy spoke https.

    X-Forwarded-Host, -Port and -Prefix are not read: the proxies pass Host as it came, the
    app lives at the root, and links in emails come from BASE_URL. With 0 (the default) no
    forwarded header is believed: whoever can reach the app directly could write them."""
    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0)


# C0 controls, DEL and backslash: browsers drop tab, CR and LF anywhere in a URL, strip
# controls and spaces around it and read a backslash as a slash; a target with any of them
# is refused rather than guessed at.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
_DROPPED = re.compile(r"[\t\r\n]")


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site (for a `next` or `volver` parameter), else
    None; every place that reads one goes through here. Refused: a scheme or a host, and
    whatever a browser would read as one after its normalisation (`//`, `/\\`, a tab or
    controls inside, whitespace around) or after decoding (`/%09/host`, `/%2F/host`).
    CR or LF answers 400: no page of this site sends one."""
    if not target:
        return None
    if "\r" in target or "\n" in target:
        abort(400)
    if _UNSAFE.search(target) or target != target.strip():
        return None
    decoded = _DROPPED.sub("", unquote(target)).replace("\\", "/")
    if not (_single_slash(target) and _single_slash(decoded)):
        return None
    return target


def _single_slash(path: str) -> bool:
    """Exactly "/", or "/" followed by a character that is neither a slash nor a backslash."""
    return path == "/" or (path.startswith("/") and path[1] not in "/\\")
