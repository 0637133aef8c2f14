"""The platform operator's console (/operador/): the product catalog, every issuer's
subscription and stamp credits, onboarding new merchants, payment slips to confirm and the
operator's own settings. Only staff with the operator role, signed in through the back
office's one sign-in (/admin/entrar)."""

from flask import Blueprint

bp = Blueprint("operator", __name__, url_prefix="/operador")

from webapp.operator import (  # noqa: E402,F401 (routes register on bp)
    home,
    onboarding,
    payments,
    products,
    settings,
)
