"""Customer accounts: registration with email verification, sign-in, sign-out."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, url_prefix="/cuenta")

from webapp.accounts import routes  # noqa: E402, F401
from webapp.accounts.session import enforce_lifetime  # noqa: E402

bp.before_app_request(enforce_lifetime)
