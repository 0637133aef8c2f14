"""The point of sale's JSON API (/api/v1): tickets pushed with a per-issuer API key.

Authenticates with `Authorization: Bearer <key>` and no cookies, so it is exempt from CSRF.
Every answer is JSON, errors included (`{"errors": [{"field": ..., "message": ...}]}`).
"""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

from webapp.api import routes, services  # noqa: E402,F401 (routes register on bp)
