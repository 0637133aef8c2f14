"""Security headers on every response: strict CSP and the usual hardening."""

from __future__ import annotations

from flask import Flask, Response, abort, request

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


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
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


def init_app(app: Flask) -> None:
    app.before_request(_refuse_nul)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_SECURE", app.config["BASE_URL"].startswith("https://"))
    app.after_request(_headers)
