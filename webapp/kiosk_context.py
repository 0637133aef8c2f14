"""Which kiosk a request comes from, for every blueprint: the kiosk blueprint's request hook
(webapp.kiosk.web.recognise) puts it on `g`, and the others read it here without importing
that blueprint."""

from __future__ import annotations

from flask import g

from webapp.models import Kiosk


def current() -> Kiosk | None:
    """The kiosk this request comes from, or None on a normal browser."""
    return g.get("kiosk")
