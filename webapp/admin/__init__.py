"""The merchant back office (/admin): staff sign-in, issuer settings, branches, API keys,
ticket imports, invoices, cancellations, global invoices and the dashboard.

Every view is behind `auth.staff_required` and reaches data only through `scope`.
"""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from webapp.admin import (  # noqa: E402,F401 (routes register on bp)
    account,
    apikeys,
    billing,
    branches,
    globals,
    imports,
    invoices,
    onboarding,
    people,
    privacy,
    replace,
    routes,
    services,
    settings,
)
