"""Customer accounts: registration with email verification, sign-in, sign-out."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, url_prefix="/cuenta")

from webapp.accounts import routes  # noqa: E402, F401
