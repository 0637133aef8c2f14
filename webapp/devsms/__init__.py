"""Local SMS inbox at /dev/sms (only with DEBUG or DEV_MAILBOX)."""

from flask import Blueprint

bp = Blueprint("devsms", __name__, url_prefix="/dev/sms")

from webapp.devsms import routes  # noqa: E402, F401
