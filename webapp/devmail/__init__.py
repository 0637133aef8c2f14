"""Local mailbox at /dev/mail (only with DEBUG or DEV_MAILBOX)."""

from flask import Blueprint

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

from webapp.devmail import routes  # noqa: E402, F401
