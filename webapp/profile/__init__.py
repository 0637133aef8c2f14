"""Mi cuenta → Datos fiscales (the customer's fiscal profile) and Cambiar correo."""

from flask import Blueprint

bp = Blueprint("profile", __name__, url_prefix="/cuenta/perfil")

from webapp.profile import routes  # noqa: E402, F401
