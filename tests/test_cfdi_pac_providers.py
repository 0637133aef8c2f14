"""Finkok and SW Sapien behind the Pac interface, against a loopback server replaying their answers.

The answers have the shapes the providers document (Finkok's `stampResult`/`stampedResult` SOAP
envelopes with `xml`, `UUID`, `CodEstatus`, `Incidencias`, as captured in satcfdi's tests; SW's
JSON `{"status", "data", "message", "messageDetail"}` of Timbrado V4, the datawarehouse records
and the 307 "timbre previo" answer with the previous stamp in `data`). The stamped CFDIs in them
are real: signed sample CFDIs stamped by the sandbox PAC. No network but 127.0.0.1.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from tests.flows import (
    PATIENCE,
    SOAP,
    Answer,
    Doc,
    Replay,
    Seen,
    finkok,
    refused_url,
    soap_operation,
    sw_json,
    sw_refusal,
)
from webapp import config
from webapp.cfdi import samples
from webapp.cfdi.pac import Pac, PacError, Stamped
from webapp.cfdi.pac.finkok import FinkokPac
from webapp.cfdi.pac.sw import SwPac, custom_id
from webapp.wiring import stamping

STAMP_NS = "http://facturacion.finkok.com/stamp"

# The loopback server replaying scripted answers (Replay, the `server` fixture) and the stamped
# documents it hands out (Doc, the `docs` and `doc` fixtures) are in tests/flows.py and
# tests/conftest.py: test_cfdi_pac_providers_cancel uses them too.


def assert_same_stamp(found: Stamped | None, expected: Stamped) -> None:
    assert found is not None
    assert found.uuid == expected.uuid
    assert found.xml == expected.xml
    assert found.fecha_timbrado == expected.fecha_timbrado
    assert found.fecha_timbrado.tzinfo is not None
    assert found.no_certificado_sat == expected.no_certificado_sat


# --- Finkok ---------------------------------------------------------------------------------


def finkok_result(
    operation: str,
    *,
    doc: Doc | None = None,
    status: str = "",
    incidents: tuple[tuple[str, str], ...] = (),
) -> Answer:
    """Finkok's `{operation}Response`, shaped as its documented answers (satcfdi's tests)."""
    fields = []
    if doc is not None:
        tfd = doc.tfd
        fields += [
            f"<s0:xml>{escape(doc.stamped.xml.decode())}</s0:xml>",
            f"<s0:UUID>{doc.stamped.uuid}</s0:UUID>",
            f"<s0:Fecha>{tfd.get('FechaTimbrado')}</s0:Fecha>",
            f"<s0:CodEstatus>{status or 'Comprobante timbrado satisfactoriamente'}</s0:CodEstatus>",
            f"<s0:SatSeal>{tfd.get('SelloSAT')}</s0:SatSeal>",
        ]
    elif status:
        fields.append(f"<s0:CodEstatus>{status}</s0:CodEstatus>")
    if incidents:
        fields.append("<s0:Incidencias>")
        for n, (code, message) in enumerate(incidents):
            fields.append(
                f"<s0:Incidencia><s0:IdIncidencia>{n}</s0:IdIncidencia><s0:Uuid></s0:Uuid>"
                f"<s0:CodigoError>{code}</s0:CodigoError><s0:WorkProcessId>wp</s0:WorkProcessId>"
                f"<s0:MensajeIncidencia>{escape(message)}</s0:MensajeIncidencia>"
                "<s0:ExtraInfo/><s0:NoCertificadoPac/>"
                "<s0:FechaRegistro>2026-01-15T10:00:00</s0:FechaRegistro></s0:Incidencia>"
            )
        fields.append("</s0:Incidencias>")
    else:
        fields.append("<s0:Incidencias/>")
    if doc is not None:
        fields.append(
            f"<s0:NoCertificadoSAT>{doc.stamped.no_certificado_sat}</s0:NoCertificadoSAT>"
        )
    envelope = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<senv:Envelope xmlns:s0="apps.services.soap.core.views" '
        f'xmlns:senv="{SOAP}" xmlns:tns="{STAMP_NS}"><senv:Body>'
        f"<tns:{operation}Response><tns:{operation}Result>{''.join(fields)}"
        f"</tns:{operation}Result></tns:{operation}Response></senv:Body></senv:Envelope>"
    )
    return 200, "text/xml; charset=utf-8", envelope.encode()


def finkok_routes(server: Replay, **answers: Answer | Callable[[Seen], Answer]) -> None:
    """Answer each SOAP operation of the stamp service as `answers` says."""

    def answer(seen: Seen) -> Answer:
        if seen.path != "/servicios/soap/stamp.wsdl":
            return 404, "text/plain", b"no"
        reply = answers[etree.QName(soap_operation(seen)).localname]
        return reply(seen) if callable(reply) else reply

    server.answer = answer


def operations(server: Replay) -> list[str]:
    return [etree.QName(soap_operation(seen)).localname for seen in server.seen]


def test_finkok_is_a_pac_on_the_demo_environment_by_default():
    pac = FinkokPac("user", "password")
    assert isinstance(pac, Pac)
    assert pac.endpoint == "https://demo-facturacion.finkok.com/servicios/soap/stamp.wsdl"
    production = FinkokPac("user", "password", production=True)
    assert production.endpoint == "https://facturacion.finkok.com/servicios/soap/stamp.wsdl"


def test_finkok_stamp_returns_the_tfd_and_uuid(server, doc):
    finkok_routes(server, stamp=finkok_result("stamp", doc=doc))
    stamped = finkok(server.url).stamp(doc.signed)
    assert_same_stamp(stamped, doc.stamped)
    assert b"TimbreFiscalDigital" in stamped.xml
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.headers["content-type"].startswith("text/xml")
    request = soap_operation(seen)
    assert etree.QName(request).localname == "stamp"
    assert base64.b64decode(request.findtext(f"{{{STAMP_NS}}}xml")) == doc.signed  # as signed
    assert request.findtext(f"{{{STAMP_NS}}}username") == "user@example.com"
    assert request.findtext(f"{{{STAMP_NS}}}password") == "s3cret"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("302", "Sello mal formado o inválido"),
        ("705", "XML estructura inválida"),
        ("CFDI40143", "Este RFC del receptor no existe en la lista de RFC inscritos"),
    ],
)
def test_finkok_refusal_is_not_retryable_and_keeps_the_code(server, doc, code, message):
    finkok_routes(server, stamp=finkok_result("stamp", incidents=((code, message),)))
    with pytest.raises(PacError) as caught:
        finkok(server.url).stamp(doc.signed)
    assert caught.value.code == code
    assert message in caught.value.message
    assert caught.value.retryable is False


def test_finkok_sat_unreachable_is_retryable(server, doc):
    finkok_routes(
        server, stamp=finkok_result("stamp", incidents=(("708", "No se pudo conectar al SAT"),))
    )
    with pytest.raises(PacError) as caught:
        finkok(server.url).stamp(doc.signed)
    assert (caught.value.code, caught.value.retryable) == ("708", True)


def test_finkok_already_stamped_returns_the_previous_stamp_in_the_answer(server, doc):
    previous = (("307", "El CFDI contiene un timbre previo"),)
    finkok_routes(server, stamp=finkok_result("stamp", doc=doc, incidents=previous))
    assert_same_stamp(finkok(server.url).stamp(doc.signed), doc.stamped)
    assert operations(server) == ["stamp"]


def test_finkok_already_stamped_without_xml_asks_stamped(server, doc):
    previous = (("307", "El CFDI contiene un timbre previo"),) * 2  # as Finkok sends it
    finkok_routes(
        server,
        stamp=finkok_result("stamp", incidents=previous),
        stamped=finkok_result("stamped", doc=doc, status="Comprobante recibido satisfactoriamente"),
    )
    assert_same_stamp(finkok(server.url).stamp(doc.signed), doc.stamped)
    assert operations(server) == ["stamp", "stamped"]


def test_finkok_previous_stamp_not_yet_available_is_retryable(server, doc):
    finkok_routes(
        server,
        stamp=finkok_result("stamp", incidents=(("307", "El CFDI contiene un timbre previo"),)),
        stamped=finkok_result(
            "stamped", incidents=(("603", "El CFDI no contiene un timbre previo"),)
        ),
    )
    with pytest.raises(PacError) as caught:
        finkok(server.url).stamp(doc.signed)
    assert (caught.value.code, caught.value.retryable) == ("307", True)


def test_finkok_never_records_the_stamp_of_another_document(server, docs):
    doc, other = docs
    finkok_routes(server, stamp=finkok_result("stamp", doc=other))
    with pytest.raises(PacError) as caught:
        finkok(server.url).stamp(doc.signed)
    assert caught.value.retryable is True


def test_finkok_recover_finds_the_stamp(server, doc):
    finkok_routes(server, stamped=finkok_result("stamped", doc=doc))
    assert_same_stamp(finkok(server.url).recover(doc.signed), doc.stamped)
    assert base64.b64decode(soap_operation(server.seen[0]).findtext(f"{{{STAMP_NS}}}xml")) == (
        doc.signed
    )


def test_finkok_recover_of_a_document_never_stamped_is_none(server, doc):
    not_stamped = (("603", "El CFDI no contiene un timbre previo"),)
    finkok_routes(server, stamped=finkok_result("stamped", incidents=not_stamped))
    assert finkok(server.url).recover(doc.signed) is None
    assert operations(server) == ["stamped"]


def test_finkok_server_faults_and_errors_are_retryable(server, doc):
    fault = (
        f'<senv:Envelope xmlns:senv="{SOAP}"><senv:Body><senv:Fault>'
        "<faultcode>senv:Server</faultcode><faultstring>Internal Error</faultstring>"
        "</senv:Fault></senv:Body></senv:Envelope>"
    ).encode()
    pac = finkok(server.url)
    for answer in [(500, "text/xml", fault), (502, "text/html", b"<html>Bad Gateway</html>")]:
        server.answer = lambda seen, answer=answer: answer
        with pytest.raises(PacError) as caught:
            pac.stamp(doc.signed)
        assert caught.value.retryable is True
        with pytest.raises(PacError) as caught:
            pac.recover(doc.signed)
        assert caught.value.retryable is True


def test_finkok_that_never_answers_times_out_as_retryable(server, doc):
    server.answer = lambda seen: None
    pac = finkok(server.url, timeout=0.5)
    for call in (pac.stamp, pac.recover):
        started = time.perf_counter()
        with pytest.raises(PacError) as caught:
            call(doc.signed)
        assert time.perf_counter() - started < 3
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)


def test_finkok_connection_refused_is_retryable(doc):
    pac = finkok(refused_url(), timeout=0.5)
    for call in (pac.stamp, pac.recover):
        with pytest.raises(PacError) as caught:
            call(doc.signed)
        assert (caught.value.code, caught.value.retryable) == ("conexion", True)


def test_a_document_that_is_not_a_signed_cfdi_never_leaves(server):
    pac = finkok(server.url)
    with pytest.raises(PacError) as caught:
        pac.stamp(b"<not-xml")
    assert (caught.value.code, caught.value.retryable) == ("301", False)
    assert server.seen == []


# --- SW Sapien ------------------------------------------------------------------------------


def sw_stamp_data(doc: Doc) -> dict[str, str]:
    """The `data` of a Timbrado V4 answer (response version 4)."""
    tfd = doc.tfd
    return {
        "cadenaOriginalSAT": "||1.1|...||",
        "noCertificadoSAT": doc.stamped.no_certificado_sat,
        "noCertificadoCFDI": etree.fromstring(doc.signed).get("NoCertificado"),
        "uuid": doc.stamped.uuid.lower(),
        "selloSAT": tfd.get("SelloSAT"),
        "selloCFDI": doc.sello,
        "fechaTimbrado": tfd.get("FechaTimbrado"),
        "qrCode": "iVBORw0KGgo=",
        "cfdi": doc.stamped.xml.decode(),
    }


PREVIOUS_STAMP = "307. El comprobante contiene un timbre previo."


def sw_record(doc: Doc, url_xml: str) -> dict[str, object]:
    """A datawarehouse record of an issued document."""
    root = etree.fromstring(doc.signed)
    return {
        "uuid": doc.stamped.uuid.lower(),
        "serie": root.get("Serie"),
        "folio": root.get("Folio"),
        "emisorRfc": samples.EMISOR_RFC,
        "selloCFD": doc.sello,
        "urlXml": url_xml,
        "urlPDF": None,
        "status": True,
    }


def sw_routes(server: Replay, routes: Mapping[str, Answer | Callable[[Seen], Answer]]) -> None:
    def answer(seen: Seen) -> Answer:
        reply = routes.get(seen.path, (404, "application/json", b"{}"))
        return reply(seen) if callable(reply) else reply

    server.answer = answer


def sw(server_url: str, timeout: float = PATIENCE, **credentials: str) -> SwPac:
    return SwPac(url=server_url, timeout=timeout, **(credentials or {"token": "T0KEN"}))


def test_sw_is_a_pac_on_the_test_environment_by_default():
    pac = SwPac(token="t")
    assert isinstance(pac, Pac)
    assert (pac.endpoint, pac.api_endpoint) == (
        "https://services.test.sw.com.mx",
        "https://api.test.sw.com.mx",
    )
    production = SwPac(token="t", production=True)
    assert (production.endpoint, production.api_endpoint) == (
        "https://services.sw.com.mx",
        "https://api.sw.com.mx",
    )


def test_sw_stamp_returns_the_tfd_and_uuid(server, doc):
    sw_routes(
        server, {"/v4/cfdi33/stamp/v4": sw_json({"data": sw_stamp_data(doc), "status": "success"})}
    )
    stamped = sw(server.url).stamp(doc.signed)
    assert_same_stamp(stamped, doc.stamped)
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v4/cfdi33/stamp/v4")
    assert seen.headers["authorization"] == "Bearer T0KEN"
    assert seen.headers["content-type"].startswith("multipart/form-data")
    assert doc.signed in seen.body  # the document exactly as signed
    assert seen.headers["customid"] == custom_id(doc.sello)


def test_sw_logs_in_once_with_user_and_password(server, docs):
    def login(seen: Seen) -> Answer:
        assert (seen.headers["user"], seen.headers["password"]) == ("me@example.com", "pw")
        expires = int(time.time()) + 7200
        return sw_json({"data": {"token": "L0GIN", "expires_in": expires}, "status": "success"})

    def stamp(seen: Seen) -> Answer:
        assert seen.headers["authorization"] == "Bearer L0GIN"
        doc = next(d for d in docs if d.signed in seen.body)
        return sw_json({"data": sw_stamp_data(doc), "status": "success"})

    sw_routes(server, {"/security/authenticate": login, "/v4/cfdi33/stamp/v4": stamp})
    pac = sw(server.url, username="me@example.com", password="pw")
    for doc in docs:
        assert_same_stamp(pac.stamp(doc.signed), doc.stamped)
    assert [seen.path for seen in server.seen] == [
        "/security/authenticate",
        "/v4/cfdi33/stamp/v4",
        "/v4/cfdi33/stamp/v4",
    ]


def test_sw_refusal_is_not_retryable_and_keeps_the_code(server, doc):
    message = (
        "CFDI40102 - El resultado de la digestión debe ser igual al resultado de la "
        "desencripción del sello."
    )
    sw_routes(server, {"/v4/cfdi33/stamp/v4": sw_refusal(message)})
    with pytest.raises(PacError) as caught:
        sw(server.url).stamp(doc.signed)
    assert caught.value.code == "CFDI40102"
    assert "digestión" in caught.value.message
    assert caught.value.retryable is False


def test_sw_bad_token_is_not_retryable(server, doc):
    sw_routes(
        server, {"/v4/cfdi33/stamp/v4": sw_refusal("AU2000 - El token no es válido.", status=401)}
    )
    with pytest.raises(PacError) as caught:
        sw(server.url).stamp(doc.signed)
    assert (caught.value.code, caught.value.retryable) == ("AU2000", False)


def test_sw_already_stamped_returns_the_previous_stamp(server, doc):
    data = {"tfd": etree.tostring(doc.tfd).decode(), "cfdi": doc.stamped.xml.decode()}
    sw_routes(server, {"/v4/cfdi33/stamp/v4": sw_refusal(PREVIOUS_STAMP, data)})
    assert_same_stamp(sw(server.url).stamp(doc.signed), doc.stamped)
    assert len(server.seen) == 1


def test_sw_already_stamped_with_only_the_tfd_looks_the_uuid_up(server, doc):
    uuid = doc.stamped.uuid.lower()
    record = sw_record(doc, f"{server.url}/storage/{uuid}.xml")
    sw_routes(
        server,
        {
            "/v4/cfdi33/stamp/v4": sw_refusal(
                PREVIOUS_STAMP, {"tfd": etree.tostring(doc.tfd).decode()}
            ),
            f"/datawarehouse/v1/live/{doc.stamped.uuid}": sw_json(
                {"data": {"records": [record]}, "status": "success"}
            ),
            f"/storage/{uuid}.xml": (200, "application/xml", doc.stamped.xml),
        },
    )
    assert_same_stamp(sw(server.url).stamp(doc.signed), doc.stamped)
    assert [(seen.method, seen.path) for seen in server.seen] == [
        ("POST", "/v4/cfdi33/stamp/v4"),
        ("GET", f"/datawarehouse/v1/live/{doc.stamped.uuid}"),
        ("GET", f"/storage/{uuid}.xml"),
    ]


def test_sw_recover_finds_the_document_among_the_issued_ones(server, docs):
    doc, other = docs
    fecha = datetime.fromisoformat(etree.fromstring(doc.signed).get("Fecha")).date()

    def search(seen: Seen) -> Answer:
        assert seen.headers["authorization"] == "Bearer T0KEN"
        assert seen.query["startDate"] == [(fecha - timedelta(days=1)).isoformat()]
        assert seen.query["endDate"] == [(fecha + timedelta(days=3)).isoformat()]
        page = int(seen.query.get("page", ["1"])[0])
        record = sw_record(other if page == 1 else doc, f"{server.url}/storage/{page}.xml")
        meta = {"page": page, "perPage": 1, "pageCount": 2, "totalCount": 2}
        return sw_json({"data": {"metaData": meta, "records": [record]}, "status": "success"})

    sw_routes(
        server,
        {
            "/datawarehouse/v1/live/": search,
            "/storage/2.xml": (200, "application/xml", doc.stamped.xml),
        },
    )
    assert_same_stamp(sw(server.url).recover(doc.signed), doc.stamped)
    assert [seen.path for seen in server.seen] == [
        "/datawarehouse/v1/live/",
        "/datawarehouse/v1/live/",
        "/storage/2.xml",
    ]


def test_sw_recover_of_a_document_never_stamped_is_none(server, docs):
    doc, other = docs
    records = [sw_record(other, f"{server.url}/storage/other.xml")]
    sw_routes(
        server,
        {"/datawarehouse/v1/live/": sw_json({"data": {"records": records}, "status": "success"})},
    )
    assert sw(server.url).recover(doc.signed) is None
    assert [seen.path for seen in server.seen] == ["/datawarehouse/v1/live/"]


def test_sw_api_host_can_be_set_apart(server, doc):
    sw_routes(
        server, {"/datawarehouse/v1/live/": sw_json({"data": {"records": []}, "status": "success"})}
    )
    pac = SwPac(token="t", url=refused_url(), api_url=server.url, timeout=PATIENCE)
    assert pac.recover(doc.signed) is None


def test_sw_server_errors_are_retryable(server, doc):
    pac = sw(server.url)
    for answer in [sw_refusal("Error interno", status=500), (503, "text/html", b"<html></html>")]:
        server.answer = lambda seen, answer=answer: answer
        for call in (pac.stamp, pac.recover):
            with pytest.raises(PacError) as caught:
                call(doc.signed)
            assert caught.value.retryable is True


def test_sw_that_never_answers_times_out_as_retryable(server, doc):
    server.answer = lambda seen: None
    pac = sw(server.url, timeout=0.5)
    for call in (pac.stamp, pac.recover):
        started = time.perf_counter()
        with pytest.raises(PacError) as caught:
            call(doc.signed)
        assert time.perf_counter() - started < 3
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)


def test_sw_connection_refused_is_retryable(doc):
    pac = sw(refused_url(), timeout=0.5)
    for call in (pac.stamp, pac.recover):
        with pytest.raises(PacError) as caught:
            call(doc.signed)
        assert (caught.value.code, caught.value.retryable) == ("conexion", True)


# --- configuration ----------------------------------------------------------------------------


def settings(**overrides: object) -> dict[str, object]:
    return {"PAC": "sandbox", "PAC_TIMEOUT_SECONDS": 30.0, **overrides}


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"PAC": "finkok"}, "PAC_USERNAME"),
        ({"PAC": "finkok", "PAC_USERNAME": "u"}, "PAC_PASSWORD"),
        ({"PAC": "finkok", "PAC_PASSWORD": "p"}, "PAC_USERNAME"),
        ({"PAC": "finkok", "PAC_USERNAME": "u", "PAC_TOKEN": "t"}, "PAC_PASSWORD"),
        ({"PAC": "sw"}, "PAC_TOKEN"),
        ({"PAC": "sw", "PAC_USERNAME": "u"}, "PAC_PASSWORD"),
        ({"PAC": "sw", "PAC_PASSWORD": "p"}, "PAC_USERNAME"),
        (
            {"PAC": "finkok", "PAC_USERNAME": "u", "PAC_PASSWORD": "p", "PAC_TIMEOUT_SECONDS": 0},
            "PAC_TIMEOUT_SECONDS",
        ),
        ({"PAC": "sw", "PAC_TOKEN": "t", "PAC_URL": "ftp://example.com"}, "PAC_URL"),
        ({"PAC": "facturama"}, "finkok, sw"),
    ],
)
def test_check_refuses_a_pac_that_cannot_work_saying_which_variable(overrides, missing):
    with pytest.raises(RuntimeError, match=missing):
        config.check(settings(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"PAC": "finkok", "PAC_USERNAME": "u", "PAC_PASSWORD": "p"},
        {"PAC": "sw", "PAC_TOKEN": "t"},
        {"PAC": "sw", "PAC_USERNAME": "u", "PAC_PASSWORD": "p", "PAC_URL": "http://127.0.0.1:1"},
    ],
)
def test_check_accepts_a_pac_with_its_credentials(overrides):
    config.check(settings(**overrides))


def test_pac_settings_come_from_the_environment(monkeypatch, tmp_path):
    for name in ("PAC_USERNAME", "PAC_PASSWORD", "PAC_TOKEN", "PAC_URL", "PAC_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PAC_PRODUCTION", raising=False)
    monkeypatch.delenv("PAC_TIMEOUT_SECONDS", raising=False)
    defaults = config.from_environment(tmp_path)
    assert defaults["PAC_TIMEOUT_SECONDS"] == 30.0
    assert defaults["PAC_PRODUCTION"] is False  # never production by default
    assert defaults["PAC_URL"] is None
    monkeypatch.setenv("PAC", "finkok")
    monkeypatch.setenv("PAC_USERNAME", "user@example.com")
    monkeypatch.setenv("PAC_PASSWORD", "pw")
    monkeypatch.setenv("PAC_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("PAC_PRODUCTION", "1")
    found = config.from_environment(tmp_path)
    assert (found["PAC"], found["PAC_USERNAME"], found["PAC_PASSWORD"]) == (
        "finkok",
        "user@example.com",
        "pw",
    )
    assert (found["PAC_TIMEOUT_SECONDS"], found["PAC_PRODUCTION"]) == (2.5, True)
    config.check(found)
    pac = FinkokPac.from_settings(found)
    assert pac.endpoint == "https://facturacion.finkok.com/servicios/soap/stamp.wsdl"
    assert pac.client.transport.timeout == 2.5


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"PAC": "finkok", "PAC_USERNAME": "u", "PAC_PASSWORD": "p"}, FinkokPac),
        ({"PAC": "sw", "PAC_TOKEN": "t"}, SwPac),
    ],
)
def test_the_app_stamps_with_the_configured_provider(make_app, server, doc, overrides, kind):
    app = make_app(PAC_URL=server.url, PAC_TIMEOUT_SECONDS=0.5, **overrides)
    server.answer = lambda seen: None
    with app.app_context():
        pac = stamping().providers.deployment()
        assert isinstance(pac, kind)
        assert stamping().providers.deployment() is pac  # one per process
        assert stamping().providers.deployment().name != "sandbox"
        with pytest.raises(PacError) as caught:
            pac.stamp(doc.signed)
    assert caught.value.retryable is True
    assert len(server.seen) == 1  # it called the configured URL
