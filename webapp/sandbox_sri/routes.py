"""The two SOAP services; a request that is not the operation's SOAP gets a SOAP Fault (4xx)."""

from __future__ import annotations

import base64
import binascii

from flask import Response, abort, current_app, request
from lxml import etree

from webapp.sandbox_sri import bp
from webapp.sri.client import (
    ACCESS_KEY,
    AUTHORISATION_NS,
    AUTHORISATION_SERVICE,
    RECEPTION_NS,
    RECEPTION_SERVICE,
    SOAP_ENV,
)
from webapp.sri.sandbox import (
    MAX_COMPROBANTE_BYTES,
    SandboxSri,
    authorisation_answer,
    reception_answer,
)

# base64 of SRI's largest comprobante, and room for the envelope.
MAX_REQUEST_BYTES = MAX_COMPROBANTE_BYTES * 4 // 3 + 64 * 1024
SOAP_CONTENT_TYPE = "text/xml;charset=UTF-8"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class _BadRequest(Exception):
    def __init__(self, text: str, status: int = 400):
        super().__init__(text)
        self.text = text
        self.status = status


@bp.before_request
def only_in_sandbox():
    if current_app.config.get("SRI") != "sandbox":
        abort(404)


def _sandbox() -> SandboxSri:
    return SandboxSri(current_app.config["SRI_SANDBOX_DIR"])


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=SOAP_CONTENT_TYPE)


def _fault(error: _BadRequest) -> Response:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(
        etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault"
    )
    etree.SubElement(fault, "faultcode").text = "soap:Client"
    etree.SubElement(fault, "faultstring").text = error.text
    return _soap(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), error.status)


def _argument(namespace: str, operation: str, field: str) -> str:
    """The text of `field` in the request's `<ns:operation>`; _BadRequest otherwise."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        raise _BadRequest("La solicitud excede el tamaño permitido", 413)
    data = request.get_data(cache=False)
    if len(data) > MAX_REQUEST_BYTES:
        raise _BadRequest("La solicitud excede el tamaño permitido", 413)
    try:
        root = etree.fromstring(data, parser=_PARSER) if data.strip() else None
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None or root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise _BadRequest("La solicitud no es un sobre SOAP 1.1")
    if root.getroottree().docinfo.doctype:
        raise _BadRequest("La solicitud no puede declarar un DOCTYPE")
    call = root.find(f"{{{SOAP_ENV}}}Body/{{{namespace}}}{operation}")
    if call is None:
        raise _BadRequest(f"Se esperaba la operación {operation}")
    for child in call:
        if isinstance(child.tag, str) and etree.QName(child).localname == field:
            return (child.text or "").strip()
    raise _BadRequest(f"Falta el argumento {field}")


@bp.post(f"/{RECEPTION_SERVICE}")
def reception():
    try:
        text = _argument(RECEPTION_NS, "validarComprobante", "xml")
        try:
            xml = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _BadRequest("El argumento xml no está en base64") from None
    except _BadRequest as error:
        return _fault(error)
    return _soap(reception_answer(_sandbox().receive(xml)))


@bp.post(f"/{AUTHORISATION_SERVICE}")
def authorisation():
    try:
        key = _argument(AUTHORISATION_NS, "autorizacionComprobante", "claveAccesoComprobante")
    except _BadRequest as error:
        return _fault(error)
    sandbox = _sandbox()
    found = sandbox.authorisations(key) if ACCESS_KEY.fullmatch(key) else []
    return _soap(authorisation_answer(found, key[:49]))
