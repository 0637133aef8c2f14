"""SRI's offline web services client against a loopback server replaying SRI's answers.

The answers have the shapes of SRI's WSDLs (RecepcionComprobantesOffline and
AutorizacionComprobantesOffline: `ns2:validarComprobanteResponse/RespuestaRecepcionComprobante`,
`ns2:autorizacionComprobanteResponse/RespuestaAutorizacionComprobante`, unqualified children) and
of the answers SRI sends (the authorised comprobante in CDATA, message 60 in the test
environment, DEVUELTA 43 for a clave already registered). No network but 127.0.0.1.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

import pytest
import requests
from lxml import etree

from tests.flows import PATIENCE, SOAP, Answer, Replay, Seen, refused_url, soap_operation
from webapp.sri import client as sri
from webapp.sri.client import (
    AUTHORISATION_NS,
    RECEPTION_NS,
    AuthorisationState,
    Environment,
    ReceptionState,
    SriBadAnswer,
    SriClient,
    SriError,
    SriFault,
    SriTimeout,
    SriUnreachable,
)

pytestmark = pytest.mark.run_once  # the same on both databases: run once

ECUADOR = timezone(timedelta(hours=-5))


def clave(secuencial: int = 1) -> str:
    """A well-formed clave de acceso (date, codDoc 01, RUC, ambiente 1, serie, mod-11 digit)."""
    digits = f"020520240117900123450011001001{secuencial:09d}123456781"
    weights = [2, 3, 4, 5, 6, 7]
    total = sum(int(d) * weights[i % 6] for i, d in enumerate(reversed(digits)))
    check = 11 - total % 11
    return digits + str({11: 0, 10: 1}.get(check, check))


KEY = clave(1)


def comprobante(key: str = KEY) -> bytes:
    """A signed-looking factura (the client only reads its claveAcceso and sends it as is)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<factura id="comprobante" version="2.1.0"><infoTributaria><ambiente>1</ambiente>'
        "<tipoEmision>1</tipoEmision><razonSocial>Telecomunicaciones Andinas del Ñuble S.A."
        "</razonSocial><ruc>1790012345001</ruc>"
        f"<claveAcceso>{key}</claveAcceso><codDoc>01</codDoc><estab>001</estab>"
        f"<ptoEmi>001</ptoEmi><secuencial>{key[30:39]}</secuencial>"
        "<dirMatriz>Av. Amazonas N24-03 y Colón, Quito</dirMatriz></infoTributaria>"
        "<infoFactura><importeTotal>11.50</importeTotal></infoFactura>"
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="Signature1">'
        "<ds:SignatureValue>c2lnbmVk</ds:SignatureValue></ds:Signature></factura>"
    ).encode()


# --- SRI's answers, as the services send them -------------------------------------------------


def envelope(inner: str, status: int = 200) -> Answer:
    text = f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body>{inner}</soap:Body></soap:Envelope>'
    return status, "text/xml;charset=UTF-8", text.encode()


def mensaje(identificador: str, texto: str, adicional: str = "", tipo: str = "ERROR") -> str:
    extra = f"<informacionAdicional>{escape(adicional)}</informacionAdicional>" if adicional else ""
    return (
        f"<mensaje><identificador>{identificador}</identificador>"
        f"<mensaje>{escape(texto)}</mensaje>{extra}<tipo>{tipo}</tipo></mensaje>"
    )


def reception(estado: str, *mensajes: str, key: str = KEY) -> Answer:
    comprobantes = (
        f"<comprobantes><comprobante><claveAcceso>{key}</claveAcceso>"
        f"<mensajes>{''.join(mensajes)}</mensajes></comprobante></comprobantes>"
        if mensajes
        else "<comprobantes/>"
    )
    return envelope(
        f'<ns2:validarComprobanteResponse xmlns:ns2="{RECEPTION_NS}">'
        f"<RespuestaRecepcionComprobante><estado>{estado}</estado>{comprobantes}"
        "</RespuestaRecepcionComprobante></ns2:validarComprobanteResponse>"
    )


def autorizacion(
    estado: str,
    *mensajes: str,
    fecha: str = "2024-05-02T10:15:30.123-05:00",
    xml: bytes | None = None,
    cdata: bool = True,
    key: str = KEY,
) -> str:
    fields = [f"<estado>{estado}</estado>"]
    if estado == "AUTORIZADO":
        fields.append(f"<numeroAutorizacion>{key}</numeroAutorizacion>")
    fields += [f"<fechaAutorizacion>{fecha}</fechaAutorizacion>", "<ambiente>PRUEBAS</ambiente>"]
    if xml is not None:
        text = xml.decode()
        fields.append(
            f"<comprobante><![CDATA[{text}]]></comprobante>"
            if cdata
            else f"<comprobante>{escape(text)}</comprobante>"
        )
    fields.append(f"<mensajes>{''.join(mensajes)}</mensajes>" if mensajes else "<mensajes/>")
    return f"<autorizacion>{''.join(fields)}</autorizacion>"


def authorisation(*autorizaciones: str, key: str = KEY) -> Answer:
    listed = (
        f"<autorizaciones>{''.join(autorizaciones)}</autorizaciones>"
        if autorizaciones
        else "<autorizaciones/>"
    )
    return envelope(
        f'<ns2:autorizacionComprobanteResponse xmlns:ns2="{AUTHORISATION_NS}">'
        f"<RespuestaAutorizacionComprobante><claveAccesoConsultada>{key}"
        f"</claveAccesoConsultada><numeroComprobantes>{len(autorizaciones)}"
        f"</numeroComprobantes>{listed}</RespuestaAutorizacionComprobante>"
        "</ns2:autorizacionComprobanteResponse>"
    )


def authorised(xml: bytes | None = None, **kwargs: object) -> Answer:
    pruebas = mensaje(
        "60", "ESTE PROCESO FUE REALIZADO EN EL AMBIENTE DE PRUEBAS", tipo="ADVERTENCIA"
    )
    return authorisation(autorizacion("AUTORIZADO", pruebas, xml=xml or comprobante(), **kwargs))


FAULT = envelope(
    "<soap:Fault><faultcode>soap:Server</faultcode>"
    "<faultstring>Error interno del servicio</faultstring></soap:Fault>",
    status=500,
)


# --- the replay server, routed by service and operation ---------------------------------------

Reply = Answer | Callable[[Seen], Answer]


def routes(server: Replay, **answers: Reply | list[Reply]) -> None:
    """Answer each operation as `answers` says (a list: one answer per call, in order)."""

    def answer(seen: Seen) -> Answer:
        operation = etree.QName(soap_operation(seen)).localname
        expected_path = {
            "validarComprobante": "/RecepcionComprobantesOffline",
            "autorizacionComprobante": "/AutorizacionComprobantesOffline",
        }[operation]
        if seen.path != expected_path:
            return 404, "text/plain", b"no"
        reply = answers[operation]
        if isinstance(reply, list):
            reply = reply.pop(0)
        return reply(seen) if callable(reply) else reply

    server.answer = answer


def operations(server: Replay) -> list[str]:
    return [etree.QName(soap_operation(seen)).localname for seen in server.seen]


class Sleeps(list):
    """Records the backoff delays instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(url: str, **kwargs: object) -> SriClient:
    kwargs.setdefault("read_timeout", PATIENCE)
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("sleep", Sleeps())
    return SriClient(base_url=url, **kwargs)


# --- endpoints ----------------------------------------------------------------------------------


def test_endpoints_of_the_test_and_production_environments():
    assert sri.TEST_RECEPTION_WSDL == (
        "https://celcer.sri.gob.ec/comprobantes-electronicos-ws/RecepcionComprobantesOffline?wsdl"
    )
    assert sri.TEST_AUTHORISATION_WSDL == (
        "https://celcer.sri.gob.ec/comprobantes-electronicos-ws/"
        "AutorizacionComprobantesOffline?wsdl"
    )
    assert sri.PRODUCTION_RECEPTION_WSDL == (
        "https://cel.sri.gob.ec/comprobantes-electronicos-ws/RecepcionComprobantesOffline?wsdl"
    )
    test = SriClient()
    assert test.environment is Environment.TEST
    assert test.reception_url + "?wsdl" == sri.TEST_RECEPTION_WSDL
    assert test.authorisation_url + "?wsdl" == sri.TEST_AUTHORISATION_WSDL
    production = SriClient(Environment.PRODUCTION)
    assert production.reception_url + "?wsdl" == sri.PRODUCTION_RECEPTION_WSDL
    assert production.authorisation_url + "?wsdl" == sri.PRODUCTION_AUTHORISATION_WSDL
    local = SriClient("2", base_url="http://127.0.0.1:9/sri/")
    assert local.reception_url == "http://127.0.0.1:9/sri/RecepcionComprobantesOffline"


def test_from_settings_reads_environment_url_and_timeouts():
    built = SriClient.from_settings(
        {
            "SRI_ENVIRONMENT": "production",
            "SRI_URL": "http://127.0.0.1:9/sandbox-sri",
            "SRI_CONNECT_TIMEOUT_SECONDS": "3",
            "SRI_READ_TIMEOUT_SECONDS": 12,
        }
    )
    assert built.environment is Environment.PRODUCTION
    assert (
        built.authorisation_url == "http://127.0.0.1:9/sandbox-sri/AutorizacionComprobantesOffline"
    )
    assert (built.connect_timeout, built.read_timeout) == (3.0, 12.0)
    default = SriClient.from_settings({})
    assert default.environment is Environment.TEST
    assert default.base_url == sri.TEST_BASE_URL
    with pytest.raises(ValueError):
        SriClient(read_timeout=0)


# --- reception ----------------------------------------------------------------------------------


def test_recibida_sends_the_signed_xml_byte_for_byte_in_base64(server):
    routes(server, validarComprobante=reception("RECIBIDA"))
    signed = comprobante()
    result = client(server.url).send(signed)
    assert result.state is ReceptionState.RECEIVED
    assert result.received is True
    assert result.access_key == KEY
    assert result.messages == ()
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.path == "/RecepcionComprobantesOffline"
    assert seen.headers["content-type"].startswith("text/xml")
    assert seen.headers["soapaction"] == '""'
    request = soap_operation(seen)
    assert request.tag == f"{{{RECEPTION_NS}}}validarComprobante"
    (field,) = request
    assert field.tag == "xml"  # unqualified, as the WSDL's schema says
    assert base64.b64decode(field.text) == signed
    assert base64.b64encode(signed).decode() in seen.body.decode()


def test_devuelta_carries_sri_messages(server):
    routes(
        server,
        validarComprobante=reception(
            "DEVUELTA",
            mensaje(
                "65",
                "FECHA EMISIÓN EXTEMPORANEA",
                "La fecha de emisión está fuera del rango de tolerancia [129600 minutos]",
            ),
            mensaje("35", "ARCHIVO NO CUMPLE ESTRUCTURA XML", "Se encontró el siguiente error"),
            mensaje("48", "AVISO", tipo="ADVERTENCIA"),
        ),
    )
    result = client(server.url).send(comprobante())
    assert result.state is ReceptionState.RETURNED
    assert result.received is False
    assert [m.identifier for m in result.messages] == ["65", "35", "48"]
    first = result.messages[0]
    assert first.message == "FECHA EMISIÓN EXTEMPORANEA"
    assert first.additional_information.startswith("La fecha de emisión está fuera")
    assert first.kind == "ERROR"
    assert str(first).startswith("65 FECHA EMISIÓN EXTEMPORANEA: La fecha")
    assert [m.identifier for m in result.errors] == ["65", "35"]
    assert operations(server) == ["validarComprobante"]


@pytest.mark.parametrize(
    ("code", "text"),
    [("43", "CLAVE ACCESO REGISTRADA"), ("70", "CLAVE DE ACCESO EN PROCESAMIENTO")],
)
def test_devuelta_for_a_clave_sri_already_has_is_a_reception(server, code, text):
    routes(server, validarComprobante=reception("DEVUELTA", mensaje(code, text)))
    result = client(server.url).send(comprobante())
    assert result.state is ReceptionState.ALREADY_RECEIVED
    assert result.received is True  # ask for its authorisation; never re-issue under a new clave
    assert [m.identifier for m in result.messages] == [code]


def test_an_answer_about_another_clave_is_a_bad_answer(server):
    other = clave(2)
    routes(server, validarComprobante=reception("DEVUELTA", mensaje("43", "X"), key=other))
    with pytest.raises(SriBadAnswer) as caught:
        client(server.url).send(comprobante())
    assert other in caught.value.message
    assert caught.value.after_send is True


def test_a_document_without_clave_never_leaves(server):
    routes(server, validarComprobante=reception("RECIBIDA"))
    for bad in (b"<not-xml", b"<factura><infoTributaria/></factura>", comprobante("123")):
        with pytest.raises(ValueError):
            client(server.url).send(bad)
    with pytest.raises(ValueError):
        client(server.url).authorise("12345")
    assert server.seen == []


def test_a_clave_of_the_other_environment_never_leaves(server):
    routes(server, validarComprobante=reception("RECIBIDA"))
    production = client(server.url, environment=Environment.PRODUCTION)
    with pytest.raises(ValueError, match="ambiente 1"):
        production.send(comprobante())
    with pytest.raises(ValueError, match="ambiente 1"):
        production.authorise(KEY)
    assert server.seen == []


# --- authorisation --------------------------------------------------------------------------------


@pytest.mark.parametrize("cdata", [True, False], ids=["cdata", "escaped"])
def test_autorizado_returns_number_date_environment_and_the_comprobante(server, cdata):
    signed = comprobante()
    routes(server, autorizacionComprobante=authorised(signed, cdata=cdata))
    result = client(server.url).authorise(KEY)
    assert result.state is AuthorisationState.AUTHORISED
    assert (result.final, result.pending) == (True, False)
    assert result.access_key == KEY
    assert result.number == KEY
    assert result.authorised_at == datetime(2024, 5, 2, 10, 15, 30, 123000, tzinfo=ECUADOR)
    assert result.environment == "PRUEBAS"
    assert result.comprobante == signed.strip()
    assert etree.fromstring(result.comprobante).findtext("infoTributaria/claveAcceso") == KEY
    assert [(m.identifier, m.kind) for m in result.messages] == [("60", "ADVERTENCIA")]
    (seen,) = server.seen
    assert seen.path == "/AutorizacionComprobantesOffline"
    assert seen.headers["soapaction"] == '""'
    request = soap_operation(seen)
    assert request.tag == f"{{{AUTHORISATION_NS}}}autorizacionComprobante"
    (field,) = request
    assert (field.tag, field.text) == ("claveAccesoComprobante", KEY)


def test_an_authorisation_among_earlier_refusals_wins(server):
    refused = autorizacion(
        "NO AUTORIZADO", mensaje("39", "FIRMA INVALIDA"), fecha="2024-05-02T10:00:00-05:00"
    )
    routes(
        server,
        autorizacionComprobante=authorisation(
            refused, autorizacion("AUTORIZADO", xml=comprobante()), refused
        ),
    )
    result = client(server.url).authorise(KEY)
    assert result.state is AuthorisationState.AUTHORISED
    assert result.messages == ()


def test_no_autorizado_carries_the_reasons(server):
    routes(
        server,
        autorizacionComprobante=authorisation(
            autorizacion(
                "NO AUTORIZADO",
                mensaje("39", "FIRMA INVALIDA", "La firma es invalida [Firma inválida]"),
                mensaje("56", "ERROR ESTABLECIMIENTO CERRADO"),
                xml=comprobante(),
            )
        ),
    )
    result = client(server.url).authorise(KEY)
    assert result.state is AuthorisationState.NOT_AUTHORISED
    assert result.final is True
    assert result.number is None
    assert [m.identifier for m in result.messages] == ["39", "56"]
    assert result.messages[0].additional_information == "La firma es invalida [Firma inválida]"


def test_en_proceso_and_an_empty_list_are_not_yet(server):
    routes(
        server,
        autorizacionComprobante=[
            authorisation(autorizacion("EN PROCESO")),
            authorisation(),
        ],
    )
    sri_client = client(server.url)
    in_process = sri_client.authorise(KEY)
    assert in_process.state is AuthorisationState.IN_PROCESS
    assert (in_process.pending, in_process.final) == (True, False)
    nothing = sri_client.authorise(KEY)
    assert nothing.state is AuthorisationState.NOT_FOUND
    assert nothing.pending is True
    assert (nothing.number, nothing.comprobante) == (None, None)
    assert operations(server) == ["autorizacionComprobante"] * 2


def test_an_authorisation_without_its_number_or_date_is_a_bad_answer(server):
    answer = authorisation(autorizacion("AUTORIZADO", fecha="mañana"))
    routes(server, autorizacionComprobante=answer)
    with pytest.raises(SriBadAnswer):
        client(server.url).authorise(KEY)


# --- faults, garbage, no server -------------------------------------------------------------------


def test_a_soap_fault_is_reported_and_not_retried(server):
    routes(server, validarComprobante=FAULT, autorizacionComprobante=FAULT)
    sri_client = client(server.url)
    with pytest.raises(SriFault) as caught:
        sri_client.send(comprobante())
    fault = caught.value
    assert (fault.code, fault.text, fault.status) == (
        "soap:Server",
        "Error interno del servicio",
        500,
    )
    assert fault.after_send is True and fault.access_key == KEY
    with pytest.raises(SriFault):
        sri_client.authorise(KEY)
    assert operations(server) == ["validarComprobante", "autorizacionComprobante"]
    assert sri_client._sleep == []


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<html><body>Mantenimiento</body></html>"),
        (200, "text/xml", b"\x00\xffnot xml at all"),
        (200, "text/xml", b""),
        envelope("<ns2:otraCosa xmlns:ns2='http://ec.gob.sri.ws.recepcion'/>"),
        reception("PERDIDA"),
        (404, "text/html", b"<html>Not Found</html>"),
    ],
    ids=["html", "binary", "empty", "other-operation", "unknown-state", "http-404"],
)
def test_garbage_is_a_bad_answer_after_send(server, answer):
    server.answer = lambda seen: answer
    with pytest.raises(SriBadAnswer) as caught:
        client(server.url).send(comprobante())
    assert type(caught.value) is SriBadAnswer
    assert caught.value.after_send is True
    assert caught.value.access_key == KEY
    assert len(server.seen) == 1  # never sent twice


def test_an_oversized_answer_is_refused(server, monkeypatch):
    monkeypatch.setattr(sri, "MAX_ANSWER_BYTES", 1000)
    routes(server, autorizacionComprobante=authorised(comprobante() * 20))
    with pytest.raises(SriBadAnswer) as caught:
        client(server.url).authorise(KEY)
    assert "excede" in caught.value.message


def test_server_down_send_is_unreachable_before_sending():
    with pytest.raises(SriUnreachable) as caught:
        client(refused_url()).send(comprobante())
    assert caught.value.after_send is False  # nothing left: sending again is safe
    assert caught.value.retryable is True


def test_server_down_authorise_retries_with_backoff_then_gives_up():
    sleeps = Sleeps()
    sri_client = client(refused_url(), authorise_attempts=3, backoff=0.5, sleep=sleeps)
    with pytest.raises(SriUnreachable):
        sri_client.authorise(KEY)
    assert sleeps == [0.5, 1.0]


def test_authorise_retries_a_gateway_error_and_recovers(server):
    busy = (503, "text/html", b"<html>Service Unavailable</html>")
    routes(server, autorizacionComprobante=[busy, busy, authorised()])
    sleeps = Sleeps()
    result = client(server.url, backoff=0.25, sleep=sleeps).authorise(KEY)
    assert result.state is AuthorisationState.AUTHORISED
    assert operations(server) == ["autorizacionComprobante"] * 3
    assert sleeps == [0.25, 0.5]


def test_a_connection_cut_after_sending_is_after_send(server):
    server.release.set()  # the replay server closes the connection without answering
    server.answer = lambda seen: None
    with pytest.raises(SriUnreachable) as caught:
        client(server.url).send(comprobante())
    assert caught.value.after_send is True
    assert caught.value.access_key == KEY
    assert operations(server) == ["validarComprobante"]


# --- a timeout after the reception, recovered by clave de acceso -------------------------------


def test_read_timeout_after_send_then_authorise_by_clave_recovers(server):
    arrived, gave_up = threading.Event(), threading.Event()

    def received_but_slow(seen: Seen) -> Answer:
        arrived.set()
        gave_up.wait(PATIENCE)  # SRI holds its answer until the client has stopped waiting
        return reception("RECIBIDA")

    signed = comprobante()
    routes(
        server,
        validarComprobante=received_but_slow,
        autorizacionComprobante=authorised(signed),
    )
    sri_client = client(server.url, read_timeout=0.3)
    with pytest.raises(SriTimeout) as caught:
        sri_client.send(signed)
    gave_up.set()
    assert arrived.is_set()  # the document reached SRI before the client gave up
    timeout = caught.value
    assert isinstance(timeout, SriError)
    assert timeout.after_send is True
    assert timeout.access_key == KEY
    # recovery by clave de acceso: ask, do not send again
    result = sri_client.authorise(timeout.access_key)
    assert result.state is AuthorisationState.AUTHORISED
    assert result.comprobante == signed.strip()
    assert operations(server) == ["validarComprobante", "autorizacionComprobante"]
    assert base64.b64decode(soap_operation(server.seen[0]).findtext("xml")) == signed
    assert soap_operation(server.seen[1]).findtext("claveAccesoComprobante") == KEY


def test_transport_errors_say_whether_the_request_may_have_left():
    connect = sri._transport_error(requests.ConnectTimeout("connect"), client("http://x"), KEY)
    assert isinstance(connect, SriTimeout) and connect.after_send is False
    read = sri._transport_error(requests.ReadTimeout("read"), client("http://x"), KEY)
    assert isinstance(read, SriTimeout) and read.after_send is True
    tls = sri._transport_error(requests.exceptions.SSLError("tls"), client("http://x"), KEY)
    assert isinstance(tls, SriUnreachable) and tls.after_send is False
