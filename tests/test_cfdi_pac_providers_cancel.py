"""Cancelling through Finkok and SW Sapien, against the loopback replay server (the `server`
fixture, as in test_cfdi_pac_providers).

The answers have the shapes the providers document: Finkok's `cancel_signatureResult`
(`Folios/Folio` with `UUID`, `EstatusUUID`, `EstatusCancelacion`, and the `Acuse`) and
`get_sat_statusResult/sat` (`CodigoEstatus`, `Estado`, `EsCancelable`, `EstatusCancelacion`);
SW's Cancelación por XML `{"status": "success", "data": {"acuse", "uuid": {UUID: EstatusUUID}}}`
and SAT's ConsultaCFDIService `ConsultaResult`. Every request must carry SAT's `Cancelacion`
signed with the issuer's CSD: the tests check its signature with the certificate it carries.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import time
from xml.sax.saxutils import escape

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA1
from lxml import etree

from tests.flows import (
    PATIENCE,
    SOAP,
    Doc,
    Replay,
    Seen,
    finkok,
    load,
    make_invoice,
    now,
    refused_url,
    soap_operation,
    sw_json,
    sw_refusal,
)
from webapp.cfdi import samples
from webapp.cfdi.pac import CancelResult, PacError
from webapp.cfdi.pac.sw import SwPac
from webapp.extensions import db
from webapp.issuing import cancel
from webapp.models import CancelStatus, InvoiceStatus
from webapp.wiring import stamping

CANCEL_NS = "http://facturacion.finkok.com/cancel"
CANCELA_NS = "http://cancelacfd.sat.gob.mx"
DS = "http://www.w3.org/2000/09/xmldsig#"
CANCEL_PATH = "/servicios/soap/cancel.wsdl"
SAT_PATH = "/ConsultaCFDIService.svc"

ACUSE = (
    '<?xml version="1.0" encoding="utf-8"?><Acuse xmlns="http://cancelacfd.sat.gob.mx" '
    'Fecha="2026-01-15T10:00:00" RfcEmisor="EKU9003173C9"><Folios><UUID>{uuid}</UUID>'
    "<EstatusUUID>{code}</EstatusUUID></Folios></Acuse>"
)


@pytest.fixture(scope="module")
def signer():
    """The issuer's CSD (the emisor of the sample CFDIs)."""
    return samples.signer()


def uuid_of(doc: Doc) -> str:
    return doc.stamped.uuid.upper()


def receptor_and_total(doc: Doc) -> tuple[str, str]:
    root = etree.fromstring(doc.signed)
    receptor = root.find("{http://www.sat.gob.mx/cfd/4}Receptor").get("Rfc")
    return receptor, root.get("Total")


def assert_signed_by(cancelacion: etree._Element, signer) -> None:
    """`cancelacion` carries the issuer's certificate, its digest covers the request and its
    SignatureValue verifies with that certificate (RSA-SHA1, XMLDSig enveloped, C14N)."""
    signature = cancelacion.find(f"{{{DS}}}Signature")
    assert signature is not None
    certificate = signature.findtext(f".//{{{DS}}}X509Certificate")
    assert certificate == signer.certificate_base64()
    unsigned = copy.deepcopy(cancelacion)
    unsigned.remove(unsigned.find(f"{{{DS}}}Signature"))
    c14n = etree.tostring(unsigned, method="c14n")
    digest = base64.b64encode(hashlib.sha1(c14n).digest())  # noqa: S324 (SAT's XMLDSig)
    assert signature.findtext(f".//{{{DS}}}DigestValue") == digest.decode()
    public_key = x509.load_der_x509_certificate(base64.b64decode(certificate)).public_key()
    # SignedInfo's inclusive C14N with the namespaces in scope; reparsed on its own, since
    # libxml2 canonicalises a subtree under a redefined default namespace wrongly (xmlns="").
    signed_info = etree.fromstring(etree.tostring(signature.find(f"{{{DS}}}SignedInfo")))
    public_key.verify(  # raises InvalidSignature when it does not verify
        base64.b64decode(signature.findtext(f"{{{DS}}}SignatureValue")),
        etree.tostring(signed_info, method="c14n"),
        PKCS1v15(),
        SHA1(),  # noqa: S303 (SAT's XMLDSig is RSA-SHA1)
    )


def folio_of(cancelacion: etree._Element) -> etree._Element:
    (folio,) = cancelacion.iterfind(f"{{{CANCELA_NS}}}Folios/{{{CANCELA_NS}}}Folio")
    return folio


# --- Finkok ---------------------------------------------------------------------------------


def finkok_envelope(operation: str, fields: str) -> tuple[int, str, bytes]:
    envelope = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<senv:Envelope xmlns:s0="apps.services.soap.core.views" '
        f'xmlns:senv="{SOAP}" xmlns:tns="{CANCEL_NS}"><senv:Body>'
        f"<tns:{operation}Response><tns:{operation}Result>{fields}"
        f"</tns:{operation}Result></tns:{operation}Response></senv:Body></senv:Envelope>"
    )
    return 200, "text/xml; charset=utf-8", envelope.encode()


def finkok_cancelled(uuid: str, code: str = "201", estatus: str = "") -> tuple[int, str, bytes]:
    """Finkok's `cancel_signature` answer for the folio `uuid`."""
    acuse = ACUSE.format(uuid=uuid, code=code)
    return finkok_envelope(
        "cancel_signature",
        "<s0:Folios><s0:Folio>"
        f"<s0:EstatusUUID>{code}</s0:EstatusUUID>"
        f"<s0:EstatusCancelacion>{escape(estatus)}</s0:EstatusCancelacion>"
        f"<s0:UUID>{uuid}</s0:UUID>"
        "</s0:Folio></s0:Folios>"
        f"<s0:Acuse>{escape(acuse)}</s0:Acuse>"
        "<s0:Fecha>2026-01-15T10:00:00.123456</s0:Fecha>"
        f"<s0:RfcEmisor>{samples.EMISOR_RFC}</s0:RfcEmisor>",
    )


def finkok_sat(estado: str, estatus: str = "") -> tuple[int, str, bytes]:
    """Finkok's `get_sat_status` answer (SAT's consulta)."""
    return finkok_envelope(
        "get_sat_status",
        "<s0:sat><s0:CodigoEstatus>S - Comprobante obtenido satisfactoriamente.</s0:CodigoEstatus>"
        f"<s0:Estado>{estado}</s0:Estado>"
        "<s0:EsCancelable>Cancelable con aceptación</s0:EsCancelable>"
        f"<s0:EstatusCancelacion>{escape(estatus)}</s0:EstatusCancelacion></s0:sat>",
    )


def finkok_cancel_routes(server: Replay, **answers) -> None:
    """Answer each operation of Finkok's cancel service as `answers` says (a list: in turn)."""

    def answer(seen: Seen):
        if seen.path != CANCEL_PATH:
            return 404, "text/plain", b"no"
        reply = answers[etree.QName(soap_operation(seen)).localname]
        return reply.pop(0) if isinstance(reply, list) else reply

    server.answer = answer


def finkok_request(seen: Seen) -> etree._Element:
    """The Cancelacion a `cancel_signature` request carried."""
    operation = soap_operation(seen)
    assert etree.QName(operation).localname == "cancel_signature"
    return etree.fromstring(base64.b64decode(operation.findtext(f"{{{CANCEL_NS}}}xml")))


def test_finkok_cancel_without_acceptance_is_done_at_once(server, doc, signer):
    finkok_cancel_routes(
        server, cancel_signature=finkok_cancelled(uuid_of(doc), "201", "Cancelado sin aceptación")
    )
    result = finkok(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
    assert isinstance(result, CancelResult)
    assert (result.status, result.message) == ("cancelled", "Cancelado sin aceptación")
    assert etree.fromstring(result.acuse).findtext(f"{{{CANCELA_NS}}}Folios/{{*}}UUID") == (
        uuid_of(doc)
    )
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", CANCEL_PATH)
    operation = soap_operation(seen)
    assert operation.findtext(f"{{{CANCEL_NS}}}username") == "user@example.com"
    assert operation.findtext(f"{{{CANCEL_NS}}}password") == "s3cret"
    cancelacion = finkok_request(seen)
    assert cancelacion.get("RfcEmisor") == samples.EMISOR_RFC
    folio = folio_of(cancelacion)
    assert (folio.get("UUID"), folio.get("Motivo")) == (uuid_of(doc), "02")
    assert folio.get("FolioSustitucion") is None
    assert_signed_by(cancelacion, signer)


def test_finkok_motive_01_names_the_replacement(server, docs, signer):
    doc, replacement = docs
    finkok_cancel_routes(
        server, cancel_signature=finkok_cancelled(uuid_of(doc), "201", "En proceso")
    )
    finkok(server.url).with_signer(signer).cancel(
        doc.stamped.xml, "01", replacement.stamped.uuid.lower()
    )
    folio = folio_of(finkok_request(server.seen[0]))
    assert (folio.get("Motivo"), folio.get("FolioSustitucion")) == ("01", uuid_of(replacement))


def test_finkok_pending_then_accepted(server, doc, signer):
    finkok_cancel_routes(
        server,
        cancel_signature=finkok_cancelled(uuid_of(doc), "201", "En proceso"),
        get_sat_status=[
            finkok_sat("Vigente", "En proceso"),
            finkok_sat("Cancelado", "Cancelado con aceptación"),
        ],
    )
    pac = finkok(server.url).with_signer(signer)
    assert pac.cancel(doc.stamped.xml, "03").status == "pending"
    assert pac.cancel_status(doc.stamped.xml).status == "pending"
    later = pac.cancel_status(doc.stamped.xml)
    assert (later.status, later.message) == ("cancelled", "Cancelado con aceptación")
    query = soap_operation(server.seen[1])
    receptor, total = receptor_and_total(doc)
    assert etree.QName(query).localname == "get_sat_status"
    assert {child.tag.split("}")[1]: child.text for child in query} == {
        "username": "user@example.com",
        "password": "s3cret",
        "taxpayer_id": samples.EMISOR_RFC,
        "rtaxpayer_id": receptor,
        "uuid": uuid_of(doc),
        "total": total,
    }


def test_finkok_receptor_rejects(server, doc, signer):
    finkok_cancel_routes(server, get_sat_status=finkok_sat("Vigente", "Solicitud rechazada"))
    result = finkok(server.url).with_signer(signer).cancel_status(doc.stamped.xml)
    assert (result.status, result.message) == ("rejected", "El receptor rechazó la cancelación")


def test_finkok_previously_cancelled_is_cancelled(server, doc, signer):
    finkok_cancel_routes(
        server, cancel_signature=finkok_cancelled(uuid_of(doc), "202", "Cancelado sin aceptación")
    )
    assert (
        finkok(server.url).with_signer(signer).cancel(doc.stamped.xml, "02").status == "cancelled"
    )


def test_finkok_received_without_a_cancellation_status_is_pending(server, doc, signer):
    finkok_cancel_routes(server, cancel_signature=finkok_cancelled(uuid_of(doc), "201", ""))
    result = finkok(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
    assert result.status == "pending"  # never "cancelled" on a guess


@pytest.mark.parametrize(
    ("code", "retryable", "words"),
    [
        ("205", False, "aún no registra este UUID"),
        ("208", False, "folio de sustitución"),
        ("no_cancelable", False, "no es cancelable"),
        ("708", True, "no pudo conectar con el SAT"),
    ],
)
def test_finkok_refusal_says_why(server, doc, signer, code, retryable, words):
    finkok_cancel_routes(server, cancel_signature=finkok_cancelled(uuid_of(doc), code))
    with pytest.raises(PacError) as caught:
        finkok(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert words in caught.value.message


def test_finkok_refusal_without_folios_keeps_its_text(server, doc, signer):
    finkok_cancel_routes(
        server,
        cancel_signature=finkok_envelope(
            "cancel_signature", "<s0:CodEstatus>UUID No Encontrado</s0:CodEstatus>"
        ),
    )
    with pytest.raises(PacError, match="UUID No Encontrado") as caught:
        finkok(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
    assert caught.value.retryable is False


def test_finkok_status_without_a_request_or_unknown_to_sat(server, doc, signer):
    finkok_cancel_routes(
        server, get_sat_status=[finkok_sat("Vigente"), finkok_sat("No Encontrado")]
    )
    pac = finkok(server.url).with_signer(signer)
    with pytest.raises(PacError) as caught:
        pac.cancel_status(doc.stamped.xml)
    assert (caught.value.code, caught.value.retryable) == ("sin-solicitud", False)
    with pytest.raises(PacError) as caught:
        pac.cancel_status(doc.stamped.xml)
    assert (caught.value.code, caught.value.retryable) == ("no-encontrado", True)


def test_finkok_that_never_answers_times_out_as_retryable(server, doc, signer):
    server.answer = lambda seen: None
    pac = finkok(server.url, timeout=0.5).with_signer(signer)
    for call in (
        lambda: pac.cancel(doc.stamped.xml, "02"),
        lambda: pac.cancel_status(doc.stamped.xml),
    ):
        started = time.perf_counter()
        with pytest.raises(PacError) as caught:
            call()
        assert time.perf_counter() - started < 3
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)


def test_finkok_connection_refused_and_server_faults_are_retryable(server, doc, signer):
    pac = finkok(refused_url(), timeout=0.5).with_signer(signer)
    with pytest.raises(PacError) as caught:
        pac.cancel(doc.stamped.xml, "02")
    assert (caught.value.code, caught.value.retryable) == ("conexion", True)
    server.answer = lambda seen: (502, "text/html", b"<html>Bad Gateway</html>")
    with pytest.raises(PacError) as caught:
        finkok(server.url).with_signer(signer).cancel_status(doc.stamped.xml)
    assert caught.value.retryable is True


# --- what never leaves ------------------------------------------------------------------------


def sw(server_url: str, timeout: float = PATIENCE) -> SwPac:
    return SwPac(
        token="T0KEN", url=server_url, status_url=f"{server_url}{SAT_PATH}", timeout=timeout
    )


@pytest.mark.parametrize("make", [finkok, sw], ids=["finkok", "sw"])
def test_requests_sat_would_refuse_never_leave(server, docs, signer, make):
    doc, replacement = docs
    pac = make(server.url).with_signer(signer)
    with pytest.raises(PacError, match="sustitución") as caught:
        pac.cancel(doc.stamped.xml, "01")  # motive 01 without its replacement
    assert caught.value.retryable is False
    with pytest.raises(PacError, match="sustitución"):
        pac.cancel(doc.stamped.xml, "02", uuid_of(replacement))
    with pytest.raises(PacError, match="Motivo"):
        pac.cancel(doc.stamped.xml, "05")
    with pytest.raises(PacError, match="no está timbrado"):
        pac.cancel(doc.signed, "02")  # the signed CFDI, not the stamped one
    assert server.seen == []


@pytest.mark.parametrize("make", [finkok, sw], ids=["finkok", "sw"])
def test_cancelling_needs_the_issuers_own_csd(server, doc, make):
    plain = make(server.url)
    with pytest.raises(PacError) as caught:
        plain.cancel(doc.stamped.xml, "02")
    assert (caught.value.code, caught.value.retryable) == ("sin-csd", False)
    other = samples.signer("AAA010101AAA", "OTRA EMPRESA")
    with pytest.raises(PacError, match="AAA010101AAA") as caught:
        plain.with_signer(lambda: other).cancel(doc.stamped.xml, "02")
    assert caught.value.retryable is False
    assert server.seen == []
    acting = plain.with_signer(samples.signer())
    assert acting.client is plain.client and plain.signer is None  # shared, not changed


# --- SW Sapien --------------------------------------------------------------------------------


def sw_cancelled(doc: Doc, code: str = "201") -> tuple[int, str, bytes]:
    """SW's Cancelación por XML answer for `doc` (SAT's EstatusUUID per UUID, the acuse)."""
    acuse = ACUSE.format(uuid=uuid_of(doc), code=code)
    return sw_json({"data": {"acuse": acuse, "uuid": {uuid_of(doc): code}}, "status": "success"})


def sat_consulta(estado: str, estatus: str | None = None) -> tuple[int, str, bytes]:
    """SAT's ConsultaCFDIService answer."""
    cancelacion = (
        f"<a:EstatusCancelacion>{escape(estatus)}</a:EstatusCancelacion>"
        if estatus
        else '<a:EstatusCancelacion i:nil="true"/>'
    )
    body = (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><ConsultaResponse xmlns="http://tempuri.org/">'
        "<ConsultaResult "
        'xmlns:a="http://schemas.datacontract.org/2004/07/Sat.Cfdi.Negocio.ConsultaCfdi.Servicio" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        "<a:CodigoEstatus>S - Comprobante obtenido satisfactoriamente.</a:CodigoEstatus>"
        "<a:EsCancelable>Cancelable con aceptación</a:EsCancelable>"
        f"<a:Estado>{estado}</a:Estado>{cancelacion}"
        "<a:ValidacionEFOS>200</a:ValidacionEFOS></ConsultaResult></ConsultaResponse>"
        "</s:Body></s:Envelope>"
    )
    return 200, "text/xml; charset=utf-8", body.encode()


def sw_cancel_routes(server: Replay, cancel=None, consulta=None) -> None:
    """SW's cancel service and SAT's consulta; a list answers in turn."""
    routes = {"/cfdi33/cancel/xml": cancel, SAT_PATH: consulta}

    def answer(seen: Seen):
        reply = routes.get(seen.path)
        if reply is None:
            return 404, "application/json", b"{}"
        return reply.pop(0) if isinstance(reply, list) else reply

    server.answer = answer


def sw_request(seen: Seen) -> etree._Element:
    """The Cancelacion a Cancelación por XML request carried (its multipart `xml` field)."""
    assert (seen.method, seen.path) == ("POST", "/cfdi33/cancel/xml")
    assert seen.headers["content-type"].startswith("multipart/form-data")
    assert b'name="xml"' in seen.body
    start = seen.body.index(b"<Cancelacion")
    end = seen.body.index(b"</Cancelacion>") + len(b"</Cancelacion>")
    return etree.fromstring(seen.body[start:end])


def test_sw_cancel_without_acceptance_is_done_at_once(server, doc, signer):
    sw_cancel_routes(
        server, sw_cancelled(doc), sat_consulta("Cancelado", "Cancelado sin aceptación")
    )
    result = sw(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
    assert (result.status, result.message) == ("cancelled", "Cancelado sin aceptación")
    assert b"<EstatusUUID>201</EstatusUUID>" in result.acuse
    cancel, consulta = server.seen
    assert cancel.headers["authorization"] == "Bearer T0KEN"
    cancelacion = sw_request(cancel)
    assert cancelacion.get("RfcEmisor") == samples.EMISOR_RFC
    folio = folio_of(cancelacion)
    assert (folio.get("UUID"), folio.get("Motivo"), folio.get("FolioSustitucion")) == (
        uuid_of(doc),
        "02",
        None,
    )
    assert_signed_by(cancelacion, signer)
    assert consulta.headers["soapaction"] == "http://tempuri.org/IConsultaCFDIService/Consulta"
    receptor, total = receptor_and_total(doc)
    expression = etree.fromstring(consulta.body).findtext(
        ".//{http://tempuri.org/}expresionImpresa"
    )
    assert expression == f"?re={samples.EMISOR_RFC}&rr={receptor}&tt={total}&id={uuid_of(doc)}"


def test_sw_motive_01_names_the_replacement(server, docs, signer):
    doc, replacement = docs
    sw_cancel_routes(server, sw_cancelled(doc), sat_consulta("Vigente", "En proceso"))
    result = (
        sw(server.url).with_signer(signer).cancel(doc.stamped.xml, "01", replacement.stamped.uuid)
    )
    assert result.status == "pending"
    folio = folio_of(sw_request(server.seen[0]))
    assert (folio.get("Motivo"), folio.get("FolioSustitucion")) == ("01", uuid_of(replacement))


def test_sw_pending_then_accepted(server, doc, signer):
    sw_cancel_routes(
        server,
        sw_cancelled(doc),
        [
            sat_consulta("Vigente", "En proceso"),
            sat_consulta("Vigente", "En proceso"),
            sat_consulta("Cancelado", "Plazo vencido"),
        ],
    )
    pac = sw(server.url).with_signer(signer)
    assert pac.cancel(doc.stamped.xml, "02").status == "pending"
    assert pac.cancel_status(doc.stamped.xml).status == "pending"
    later = pac.cancel_status(doc.stamped.xml)
    assert (later.status, later.message) == ("cancelled", "Plazo vencido")


def test_sw_receptor_rejects(server, doc, signer):
    sw_cancel_routes(server, consulta=sat_consulta("Vigente", "Solicitud rechazada"))
    assert sw(server.url).with_signer(signer).cancel_status(doc.stamped.xml).status == "rejected"


def test_sw_received_while_sat_cannot_tell_yet_is_pending(server, doc, signer):
    for consulta in (sat_consulta("Vigente"), (503, "text/html", b"<html></html>")):
        server.seen.clear()
        sw_cancel_routes(server, sw_cancelled(doc), consulta)
        result = sw(server.url).with_signer(signer).cancel(doc.stamped.xml, "02")
        assert result.status == "pending"
        assert result.acuse is not None
        assert [seen.path for seen in server.seen] == ["/cfdi33/cancel/xml", SAT_PATH]


def test_sw_refusals_say_why(server, doc, signer):
    pac = sw(server.url).with_signer(signer)
    sw_cancel_routes(server, sw_cancelled(doc, "205"))
    with pytest.raises(PacError) as caught:
        pac.cancel(doc.stamped.xml, "02")
    assert (caught.value.code, caught.value.retryable) == ("205", False)
    assert "aún no registra este UUID" in caught.value.message
    assert [seen.path for seen in server.seen] == ["/cfdi33/cancel/xml"]  # no status query
    sw_cancel_routes(server, sw_refusal("CA2100 - El certificado no es un CSD."))
    with pytest.raises(PacError) as caught:
        pac.cancel(doc.stamped.xml, "02")
    assert (caught.value.code, caught.value.retryable) == ("CA2100", False)
    assert "no es un CSD" in caught.value.message


def test_sw_that_never_answers_times_out_as_retryable(server, doc, signer):
    server.answer = lambda seen: None
    pac = sw(server.url, timeout=0.5).with_signer(signer)
    for call in (
        lambda: pac.cancel(doc.stamped.xml, "02"),
        lambda: pac.cancel_status(doc.stamped.xml),
    ):
        started = time.perf_counter()
        with pytest.raises(PacError) as caught:
            call()
        assert time.perf_counter() - started < 3
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)


def test_sw_status_uses_sats_consulta_service_by_default():
    assert SwPac(token="t").status_url == (
        "https://pruebacfdiconsultaqr.cloudapp.net/ConsultaCFDIService.svc"
    )
    assert SwPac(token="t", production=True).status_url == (
        "https://consultaqr.facturaelectronica.sat.gob.mx/ConsultaCFDIService.svc"
    )


# --- through the app: pac_for gives the provider the issuer's CSD ---------------------------


def use_finkok(app, url: str) -> None:
    """Switch the running app to Finkok at `url` (the invoices were stamped in the sandbox)."""
    app.config.update(
        PAC="finkok", PAC_USERNAME="user@example.com", PAC_PASSWORD="s3cret", PAC_URL=url
    )
    app.config["PAC_TIMEOUT_SECONDS"] = PATIENCE  # the replay server answers, however slowly
    app.extensions["stamping"].providers.replace_deployment(None)


def test_the_admin_cancels_through_finkok_with_the_issuers_csd(app, demo, server):

    public_id = make_invoice(app)
    use_finkok(app, server.url)
    with app.app_context():
        invoice = load(public_id)
        finkok_cancel_routes(
            server,
            cancel_signature=finkok_cancelled(invoice.uuid, "201", "Cancelado sin aceptación"),
        )
        pac = stamping().pac_for(invoice.issuer)
        assert pac is stamping().pac_for(invoice.issuer)  # one per issuer
        assert (
            pac.client is stamping().providers.deployment().client
        )  # the deployment's account and connection
        cancel.request_cancel(db.session, invoice, "02", pac, now())
        assert invoice.status is InvoiceStatus.CANCELLED
        assert invoice.cancel_status is CancelStatus.CANCELLED
        (history,) = cancel.history_of(db.session, invoice)
        assert b"<EstatusUUID>201</EstatusUUID>" in history.acuse
        cancelacion = finkok_request(server.seen[0])
        assert folio_of(cancelacion).get("UUID") == invoice.uuid
        assert_signed_by(cancelacion, stamping().signer_for(invoice.issuer))


def test_an_issuer_without_its_csd_is_told_before_anything_is_sent(app, demo, server):

    public_id = make_invoice(app)
    use_finkok(app, server.url)
    with app.app_context():
        invoice = load(public_id)
        invoice.issuer.csd_key_encrypted = None
        db.session.commit()
        with pytest.raises(cancel.CancelError, match="CSD del emisor"):
            cancel.request_cancel(
                db.session, invoice, "02", stamping().pac_for(invoice.issuer), now()
            )
        assert invoice.cancel_status is None  # nothing pending: it may be asked again
    assert server.seen == []
