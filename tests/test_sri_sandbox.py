"""The sandbox SRI (webapp.sri.sandbox): what it receives, returns, authorises and refuses,
its files shared between instances, its SOAP answers read by the real client, and the app
serving it (webapp/sandbox_sri) to the real SriClient over HTTP."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from lxml import etree

from webapp.sri import access_key, catalogs
from webapp.sri.client import (
    AuthorisationState,
    ReceptionState,
    SriClient,
    _soap_body,
    read_authorisation,
    read_reception,
)
from webapp.sri.factura import Comprador, Emisor, Factura, Linea, Pago, access_key_of, build_xml
from webapp.sri.p12 import load_p12
from webapp.sri.sandbox import SandboxSri, authorisation_answer, reception_answer
from webapp.sri.signing import sign
from webapp.sri.testp12 import make_test_p12

pytestmark = pytest.mark.run_once  # the outcome does not depend on the database: run once

D = Decimal
RUC = "1792060346001"
OTHER_RUC = "1790016919001"
PASSWORD = "Clave-de-prueba-2024"
NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
RECEIVED_AT = datetime(2025, 3, 14, 10, 30, 15, tzinfo=timezone(timedelta(hours=-5)))
SERVICES = "/sandbox-sri/comprobantes-electronicos-ws"

EMISOR = Emisor(
    ruc=RUC,
    razon_social="Telefónica Andina de Prueba S.A.",
    direccion_matriz="Av. Amazonas N34-120 y Av. Atahualpa, Quito",
    obligado_contabilidad=True,
)
LINEAS = (Linea("PLAN-01", "Plan móvil 30 GB", D("2"), D("30.00"), catalogs.IVA_15),)


def _factura(**changes) -> Factura:
    base = Factura(
        emisor=EMISOR,
        ambiente=access_key.PRUEBAS,
        estab="001",
        pto_emi="002",
        secuencial=123,
        fecha_emision=date(2025, 3, 14),
        comprador=Comprador(catalogs.CEDULA, "1710034065", "María José Pérez"),
        lineas=LINEAS,
        pagos=(Pago("01", D("69.00")),),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def key():
    data = make_test_p12(RUC, EMISOR.razon_social, PASSWORD, now=NOW)
    return load_p12(data, PASSWORD, RUC, NOW)


@pytest.fixture(scope="module")
def other_key():
    data = make_test_p12(OTHER_RUC, "OTRA EMPRESA S.A.", PASSWORD, now=NOW)
    return load_p12(data, PASSWORD, OTHER_RUC, NOW)


@pytest.fixture
def sandbox(tmp_path):
    return SandboxSri(tmp_path / "sri", now=lambda: RECEIVED_AT)


def _signed(key, factura: Factura | None = None, codigo: str = "12345678", edit=None):
    """The signed XML of `factura` and its clave; `edit(unsigned) -> unsigned` changes the XML
    before it is signed (what build_xml would refuse to write)."""
    factura = factura or _factura()
    clave = access_key_of(factura, codigo)
    xml = build_xml(factura, clave)
    if edit is not None:
        xml = edit(xml)
    return sign(xml, key, now=NOW), clave


def _ids(result) -> list[str]:
    return [m.identifier for m in result.messages]


# --- reception and authorisation ---------------------------------------------------------------


def test_a_good_factura_is_received_and_authorised(sandbox, key):
    signed, clave = _signed(key)
    assert sandbox.authorise(clave).state is AuthorisationState.NOT_FOUND
    reception = sandbox.send(signed)
    assert (reception.state, reception.access_key, reception.messages) == (
        ReceptionState.RECEIVED,
        clave,
        (),
    )
    authorisation = sandbox.authorise(clave)
    assert authorisation.state is AuthorisationState.AUTHORISED
    assert authorisation.number == clave
    assert authorisation.authorised_at == RECEIVED_AT
    assert authorisation.authorised_at.utcoffset() == timedelta(hours=-5)
    assert authorisation.environment == "PRUEBAS"
    assert authorisation.comprobante == signed.strip()
    assert _ids(authorisation) == ["60"]
    # Another instance on the same directory (another worker) sees the same.
    assert SandboxSri(sandbox.directory).authorise(clave) == authorisation


def test_the_same_clave_again_is_already_received(sandbox, key):
    signed, clave = _signed(key)
    assert sandbox.send(signed).state is ReceptionState.RECEIVED
    again = sandbox.send(signed)
    assert again.state is ReceptionState.ALREADY_RECEIVED and again.received
    assert [(m.identifier, m.message) for m in again.messages] == [
        ("43", "CLAVE ACCESO REGISTRADA")
    ]
    assert sandbox.authorise(clave).state is AuthorisationState.AUTHORISED


def test_another_clave_for_an_authorised_secuencial_is_returned(sandbox, key):
    first, _ = _signed(key, codigo="12345678")
    second, clave = _signed(key, codigo="87654321")
    assert sandbox.send(first).state is ReceptionState.RECEIVED
    returned = sandbox.send(second)
    assert returned.state is ReceptionState.RETURNED and _ids(returned) == ["45"]
    assert returned.messages[0].message == "SECUENCIAL REGISTRADO"
    assert sandbox.authorise(clave).state is AuthorisationState.NOT_FOUND
    # Another secuencial or another punto de emisión is another number.
    for factura in (_factura(secuencial=124), _factura(pto_emi="003")):
        assert sandbox.send(_signed(key, factura)[0]).state is ReceptionState.RECEIVED


def _returned_35(sandbox, xml: bytes) -> str:
    reception = sandbox.receive(xml)
    assert reception.state is ReceptionState.RETURNED
    assert [(m.identifier, m.message, m.kind) for m in reception.messages] == [
        ("35", "ARCHIVO NO CUMPLE ESTRUCTURA XML", "ERROR")
    ]
    return reception.messages[0].additional_information


def test_what_breaks_the_schema_is_returned(sandbox, key):
    factura = _factura()
    unsigned = build_xml(factura, access_key_of(factura, "12345678"))
    assert "firmada" in _returned_35(sandbox, unsigned)
    assert "estructura" in _returned_35(sandbox, b"<factura>no")
    assert "vacío" in _returned_35(sandbox, b"")
    signed, _ = _signed(
        key,
        edit=lambda x: x.replace(b"<obligadoContabilidad>SI<", b"<obligadoContabilidad>TAL VEZ<"),
    )
    assert "estructura" in _returned_35(sandbox, signed)


def test_a_clave_that_does_not_fit_the_factura_is_returned(sandbox, key):
    signed, clave = _signed(key)
    wrong_digit = clave[:-1] + str((int(clave[-1]) + 1) % 10)
    bad, _ = _signed(key, edit=lambda x: x.replace(clave.encode(), wrong_digit.encode()))
    assert "dígito verificador" in _returned_35(sandbox, bad)
    other, _ = _signed(
        key, edit=lambda x: x.replace(b"<secuencial>000000123<", b"<secuencial>000000124<")
    )
    assert "secuencial" in _returned_35(sandbox, other)
    other_date, _ = _signed(key, edit=lambda x: x.replace(b"14/03/2025", b"15/03/2025"))
    assert "fecha de emisión" in _returned_35(sandbox, other_date)
    assert sandbox.send(signed).state is ReceptionState.RECEIVED  # the good one still goes


def test_production_is_not_the_sandbox(sandbox, key):
    signed, clave = _signed(key, _factura(ambiente=access_key.PRODUCCION))
    with pytest.raises(ValueError, match="ambiente"):
        sandbox.send(signed)
    with pytest.raises(ValueError, match="ambiente"):
        sandbox.authorise(clave)
    assert "ambiente" in _returned_35(sandbox, signed)


def test_a_broken_signature_is_received_then_not_authorised_and_can_be_sent_again(sandbox, key):
    signed, clave = _signed(key)
    tampered = signed.replace(b"<importeTotal>69.00<", b"<importeTotal>6.90<")
    tampered = tampered.replace(b"<total>69.00<", b"<total>6.90<")
    assert sandbox.send(tampered).state is ReceptionState.RECEIVED
    refused = sandbox.authorise(clave)
    assert refused.state is AuthorisationState.NOT_AUTHORISED and refused.number is None
    assert [(m.identifier, m.message) for m in refused.messages] == [("39", "FIRMA INVALIDA")]
    assert refused.comprobante == tampered.strip()
    # Corrected, the same clave goes again; SRI lists both decisions, the authorisation wins.
    assert sandbox.send(signed).state is ReceptionState.RECEIVED
    assert sandbox.authorise(clave).state is AuthorisationState.AUTHORISED
    assert [a.state for a in sandbox.authorisations(clave)] == [
        AuthorisationState.NOT_AUTHORISED,
        AuthorisationState.AUTHORISED,
    ]


def test_another_rucs_certificate_is_not_authorised(sandbox, other_key):
    signed, clave = _signed(other_key)
    assert sandbox.send(signed).state is ReceptionState.RECEIVED
    refused = sandbox.authorise(clave)
    assert refused.state is AuthorisationState.NOT_AUTHORISED and _ids(refused) == ["39"]
    assert RUC in refused.messages[0].additional_information


def test_figures_that_do_not_add_up_are_not_authorised(sandbox, key):
    signed, clave = _signed(
        key,
        edit=lambda x: x.replace(b"<importeTotal>69.00<", b"<importeTotal>70.00<").replace(
            b"<total>69.00<", b"<total>70.00<"
        ),
    )
    assert sandbox.send(signed).state is ReceptionState.RECEIVED
    refused = sandbox.authorise(clave)
    assert refused.state is AuthorisationState.NOT_AUTHORISED
    assert [(m.identifier, m.message) for m in refused.messages] == [("52", "ERROR EN DIFERENCIAS")]


def test_a_buyer_sri_would_refuse_is_not_authorised(sandbox, key):
    bad_cedula, clave = _signed(key, edit=lambda x: x.replace(b">1710034065<", b">1710034066<"))
    assert sandbox.send(bad_cedula).state is ReceptionState.RECEIVED
    refused = sandbox.authorise(clave)
    assert refused.state is AuthorisationState.NOT_AUTHORISED and _ids(refused) == ["62"]
    assert "cédula" in refused.messages[0].additional_information

    def consumidor_final(xml: bytes) -> bytes:  # USD 69.00 to "consumidor final"
        return (
            xml.replace(b"<tipoIdentificacionComprador>05<", b"<tipoIdentificacionComprador>07<")
            .replace(b">1710034065<", b">9999999999999<")
            .replace("María José Pérez".encode(), b"CONSUMIDOR FINAL")
        )

    over_limit, clave = _signed(key, _factura(secuencial=124), edit=consumidor_final)
    assert sandbox.send(over_limit).state is ReceptionState.RECEIVED
    refused = sandbox.authorise(clave)
    assert refused.state is AuthorisationState.NOT_AUTHORISED and _ids(refused) == ["62"]
    assert "consumidor final" in refused.messages[0].additional_information


def test_concurrent_sends_of_one_clave_give_one_reception(tmp_path, key):
    directory = tmp_path / "shared"
    for secuencial in (1, 2, 3):
        signed, clave = _signed(key, _factura(secuencial=secuencial))
        barrier = threading.Barrier(4)
        results = []

        def send(signed=signed, barrier=barrier, results=results):
            instance = SandboxSri(directory)  # one per "process"
            barrier.wait()
            results.append(instance.send(signed))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        states = sorted(r.state for r in results)
        assert states.count(ReceptionState.RECEIVED) == 1, results
        assert states.count(ReceptionState.ALREADY_RECEIVED) == 3, results
        assert {i for r in results for i in _ids(r)} <= {"43", "70"}
        assert SandboxSri(directory).authorise(clave).state is AuthorisationState.AUTHORISED
        assert len(SandboxSri(directory).authorisations(clave)) == 1


def test_answers_never_change(tmp_path, key):
    """Nothing is refused at random: the same documents, the same answers, anywhere."""
    documents = [_signed(key, _factura(secuencial=n))[0] for n in (1, 2)]
    answers = []
    for name in ("a", "b"):
        sandbox = SandboxSri(tmp_path / name, now=lambda: RECEIVED_AT)
        answers.append([sandbox.send(xml) for xml in documents])
    assert answers[0] == answers[1]


# --- SRI's SOAP answers, as the real client reads them ------------------------------------------


def test_the_soap_answers_read_back_as_the_same_results(sandbox, key, other_key):
    signed, clave = _signed(key)
    other, other_clave = _signed(other_key, _factura(secuencial=124))
    receptions = [
        sandbox.send(signed),
        sandbox.send(signed),
        sandbox.send(_signed(key, codigo="87654321")[0]),
        sandbox.send(other),
    ]
    for reception in receptions:
        body = _soap_body(reception_answer(reception), 200, reception.access_key)
        assert read_reception(body, reception.access_key) == reception
    for key_ in (clave, other_clave, access_key_of(_factura(secuencial=999), "11111111")):
        authorisation = sandbox.authorise(key_)
        body = _soap_body(authorisation_answer(authorisation), 200, key_)
        assert read_authorisation(body, key_) == authorisation


def test_the_authorised_comprobante_goes_in_cdata(sandbox, key):
    signed, clave = _signed(key)
    sandbox.send(signed)
    answer = authorisation_answer(sandbox.authorise(clave))
    assert b"<comprobante><![CDATA[<?xml version=" in answer
    root = etree.fromstring(answer)
    assert root.findtext(".//numeroComprobantes") == "1"
    assert root.findtext(".//fechaAutorizacion") == "2025-03-14T10:30:15-05:00"


# --- the app's sandbox web services --------------------------------------------------------------


def test_the_real_client_gets_a_factura_authorised_by_the_apps_sandbox(live_server, key):
    client = SriClient(base_url=f"{live_server}{SERVICES}", read_timeout=30)
    signed, clave = _signed(key)
    reception = client.send(signed)
    assert reception.state is ReceptionState.RECEIVED
    authorisation = client.authorise(clave)
    assert authorisation.state is AuthorisationState.AUTHORISED
    assert (authorisation.number, authorisation.environment) == (clave, "PRUEBAS")
    assert authorisation.comprobante == signed.strip()
    assert authorisation.authorised_at.utcoffset() == timedelta(hours=-5)
    again = client.send(signed)
    assert again.state is ReceptionState.ALREADY_RECEIVED and _ids(again) == ["43"]
    unknown = access_key_of(_factura(secuencial=5), "11111111")
    assert client.authorise(unknown).state is AuthorisationState.NOT_FOUND
    returned = client.send(
        signed.replace(b"<obligadoContabilidad>SI<", b"<obligadoContabilidad>TAL VEZ<")
    )
    assert returned.state is ReceptionState.RETURNED and _ids(returned) == ["35"]


def _fault(response) -> str:
    assert 400 <= response.status_code < 500, response.status_code
    assert response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.data)
    fault = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body/")
    assert fault.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Fault"
    return fault.findtext("faultstring")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<a/>",
        b'<!DOCTYPE x [<!ENTITY e "1">]><soap:Envelope '
        b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>',
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body><x/></soap:Body></soap:Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<ec:validarComprobante xmlns:ec="http://ec.gob.sri.ws.recepcion"><xml>%%%</xml>'
        b"</ec:validarComprobante></soap:Body></soap:Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<ec:validarComprobante xmlns:ec="http://ec.gob.sri.ws.recepcion"/>'
        b"</soap:Body></soap:Envelope>",
    ],
)
def test_a_malformed_request_gets_a_soap_fault(client, body):
    response = client.post(f"{SERVICES}/RecepcionComprobantesOffline", data=body)
    assert _fault(response)
    response = client.post(f"{SERVICES}/AutorizacionComprobantesOffline", data=body)
    assert _fault(response)


def test_a_base64_document_that_is_not_a_factura_is_returned_not_a_fault(client):
    envelope = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<ec:validarComprobante xmlns:ec="http://ec.gob.sri.ws.recepcion"><xml>aG9sYQ==</xml>'
        b"</ec:validarComprobante></soap:Body></soap:Envelope>"
    )
    response = client.post(f"{SERVICES}/RecepcionComprobantesOffline", data=envelope)
    assert response.status_code == 200
    reception = read_reception(_soap_body(response.data, 200, ""), "")
    assert reception.state is ReceptionState.RETURNED and _ids(reception) == ["35"]


def test_an_oversized_request_is_refused(client):
    response = client.post(f"{SERVICES}/RecepcionComprobantesOffline", data=b"x" * (1024 * 1024))
    assert response.status_code == 413 and "tamaño" in _fault(response)


def test_the_sandbox_is_not_served_when_the_app_talks_to_sri(make_app):
    app = make_app(SRI="sri")
    response = app.test_client().post(f"{SERVICES}/RecepcionComprobantesOffline", data=b"")
    assert response.status_code == 404


def test_get_is_not_a_soap_call(client):
    assert client.get(f"{SERVICES}/RecepcionComprobantesOffline").status_code == 405


def test_requests_reaches_the_live_sandbox_only_by_post(live_server):
    response = requests.get(f"{live_server}{SERVICES}/AutorizacionComprobantesOffline", timeout=10)
    assert response.status_code == 405
