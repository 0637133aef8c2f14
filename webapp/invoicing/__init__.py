"""The customer's invoicing flow: Sucursal → RFC → Ticket → stamped invoice."""

from flask import Blueprint

bp = Blueprint("invoicing", __name__, url_prefix="/facturar")

from webapp.invoicing import routes  # noqa: E402, F401
