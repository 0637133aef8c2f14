"""Fingerprinted static files: `url_for('static', ...)` adds `v=<hash of the file>`, and a
file asked for with its current hash is cached for a year, immutable.

A new version of a file has a new hash, hence a new URL, so the year-long cache never serves
a stale file; the same file asked for without `v` (or with an old one) must be revalidated.
The templates are unchanged: `app.url_defaults` adds the argument to every static URL.
"""

from __future__ import annotations

import hashlib
import os
import threading

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import safe_join

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
DIGITS = 10

_lock = threading.Lock()
_hashes: dict[str, tuple[int, int, str]] = {}  # path → (mtime_ns, size, hash)


def fingerprint(filename: str) -> str | None:
    """First DIGITS hex digits of the file's SHA-256, hashed once per version of the file
    (a stat per call notices an edit), or None when there is no such file."""
    path = safe_join(current_app.static_folder or "", filename)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    known = _hashes.get(path)
    if known and known[:2] == (stat.st_mtime_ns, stat.st_size):
        return known[2]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:DIGITS]
    with _lock:
        _hashes[path] = (stat.st_mtime_ns, stat.st_size, digest)
    return digest


def _add_version(endpoint: str, values: dict) -> None:
    if endpoint == "static" and "filename" in values and "v" not in values:
        version = fingerprint(values["filename"])
        if version:
            values["v"] = version


def _cache_headers(response: Response) -> Response:
    if request.endpoint != "static" or response.status_code not in (200, 206, 304):
        return response
    filename = (request.view_args or {}).get("filename", "")
    version = request.args.get("v")
    if version and version == fingerprint(filename):
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers.pop("Expires", None)
    else:
        response.headers["Cache-Control"] = REVALIDATE
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a static file's answer neither sets the cookie nor
    varies on it (Flask-Login reads the session after every request, which would add
    `Vary: Cookie` and make a browser's cache miss whenever the cookie changed)."""

    def save_session(self, app: Flask, session, response: Response) -> None:
        if request.endpoint == "static":
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.url_defaults(_add_version)
    app.after_request(_cache_headers)
