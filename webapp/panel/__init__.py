"""The customer's invoice panel: every invoice of the signed-in account, filtered."""

from flask import Blueprint

bp = Blueprint("panel", __name__, url_prefix="/facturas")

from webapp.panel import routes  # noqa: E402, F401
