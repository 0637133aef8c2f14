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


def init_app(app: Flask) -> None:
    app.before_request(_refuse_nul)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_SECURE", app.config["BASE_URL"].startswith("https://"))
    app.after_request(_headers)


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site (for a `next` parameter), else None: no
    scheme, no host, no `//` or backslash tricks that browsers read as another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
