"""Kiosk terminals in branches: enrolment, the kiosk's start screen, the idle wipe, and
"Continuar en mi teléfono". Domain functions in `devices`, request rules in `web`."""

from flask import Blueprint

from webapp.kiosk import web

bp = Blueprint("kiosk", __name__)
bp.before_app_request(web.recognise)
bp.after_app_request(web.after)
bp.app_context_processor(web.template_context)

from webapp.kiosk import routes  # noqa: E402, F401
