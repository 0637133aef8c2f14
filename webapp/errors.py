"""Error pages in Spanish: full pages, or fragments for htmx shown in the notices area."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.extensions import db
from webapp.htmx import is_htmx, render

MESSAGES = {
    400: (
        _l("Solicitud no válida"),
        _l("No pudimos entender la solicitud. Revise los datos e intente de nuevo."),
    ),
    403: (_l("Acceso denegado"), _l("No tiene permiso para ver esta página.")),
    404: (_l("Página no encontrada"), _l("La dirección no existe o ya no está disponible.")),
    405: (_l("Método no permitido"), _l("Esta dirección no acepta esa operación.")),
    413: (_l("Archivo demasiado grande"), _l("Lo que envió excede el tamaño permitido.")),
    429: (_l("Demasiados intentos"), _l("Espere un momento antes de volver a intentar.")),
    500: (
        _l("Error del servidor"),
        _l("Algo falló de nuestro lado. Intente de nuevo en unos minutos."),
    ),
}
CSRF_MESSAGE = (
    _l("La sesión del formulario caducó"),
    _l("Recargue la página y vuelva a enviar el formulario."),
)


def _page(code: int, title, message):
    response = render(
        "errors/error.html", "notice", status=code, code=code, title=title, message=message
    )
    if is_htmx():
        # Show the error in the page's live notices area, whatever the request targeted.
        response.headers["HX-Retarget"] = "#avisos"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def handle_http(error: HTTPException):
    code = error.code or 500
    if code not in MESSAGES:
        return error
    title, message = CSRF_MESSAGE if isinstance(error, CSRFError) else MESSAGES[code]
    response = _page(code, title, message)
    if code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_server_error(_error: Exception):
    db.session.rollback()
    return _page(500, *MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(InternalServerError, handle_server_error)
