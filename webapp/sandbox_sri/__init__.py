"""The sandbox SRI's web services: SRI's offline SOAP services served by the app itself.

    POST /sandbox-sri/comprobantes-electronicos-ws/RecepcionComprobantesOffline
    POST /sandbox-sri/comprobantes-electronicos-ws/AutorizacionComprobantesOffline

The same SOAP 1.1 operations and answers as SRI's test environment (celcer.sri.gob.ec), backed
by `webapp.sri.sandbox.SandboxSri` on the directory `SRI_SANDBOX_DIR`, so the real client
(`SriClient(base_url=<app>/sandbox-sri/comprobantes-electronicos-ws)`) can be tried end to end
without SRI. Only while the setting `SRI` is "sandbox" (404 otherwise). SOAP callers send no
cookies: exempt from CSRF, like the API.
"""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("sandbox_sri", __name__, url_prefix="/sandbox-sri/comprobantes-electronicos-ws")
csrf.exempt(bp)

from webapp.sandbox_sri import routes  # noqa: E402,F401 (routes register on bp)
