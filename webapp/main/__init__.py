from flask import Blueprint

bp = Blueprint("main", __name__)

from webapp.main import privacy, routes  # noqa: E402, F401
