"""Mis servicios (/servicios/<slug>/...): a services issuer's customers register (signup),
add the lines they hold with a code sent by SMS (lines), and see the bill of every billing
cycle and their statement of account (bills)."""

from flask import Blueprint

bp = Blueprint("myservices", __name__, url_prefix="/servicios")

from webapp.myservices import bills, lines, signup  # noqa: E402,F401 (views register on bp)
