"""Input the CFDI, the signer, the database or the invoice email would refuse is refused where it
is typed (issue #12, point 6): every issuer and receptor field, checked against the limits of
cfdv40.xsd, the columns and the email headers, with the limit said next to the field.

The bug it stops: a 250-character razón social was accepted in /admin/emisor/fiscal, and every
later invoice failed after the PAC had stamped it, its email's subject ("Factura A-1 de …")
being longer than the outbox's 255 characters.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
import satcfdi
from flask import render_template
from flask_babel import force_locale
from lxml import etree
from sqlalchemy import func, select

from tests.flows import (
    SMALL,
    api_ticket,
    complete,
    field,
    load,
    make_api_key,
    make_invoice,
    start,
    ticket_data,
)
from webapp.cfdi import samples
from webapp.cfdi.builder import build, sign
from webapp.cfdi.draft import Line
from webapp.cfdi.xsd import validate
from webapp.extensions import db
from webapp.fiscal import limits
from webapp.fiscal.limits import (
    LEGAL_NAME_MAX,
    NOMBRE_MAX,
    SERIE_MAX,
    TextProblem,
    check_text,
)
from webapp.fiscal.receptor import normalize_nombre
from webapp.mail import outbox
from webapp.models import (
    Branch,
    CustomerProfile,
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    Ticket,
    TicketLine,
    TicketStatus,
)
from webapp.models.kiosk import Kiosk

API_URL = "/api/v1/tickets"
PROFILE = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G03",
    "emails": "ingrid@example.com",
}
REPLACE = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G01",
    "forma_pago": "01",
    "email": "conta@example.com",
    "confirm": "y",
    "key": "replace-limits-key-1",
}
XSD = Path(satcfdi.__file__).parent / (
    "transform/schemas/www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd"
)
XS = "{http://www.w3.org/2001/XMLSchema}"
LEGAL_NAME = "TIENDAS DEMO LA GAVIOTA"


def _name(length: int, start: str = "INGRID XODAR JIMENEZ ") -> str:
    """An upper-case name of exactly `length` characters, with accents and Ñ."""
    return (start + "ÑÁÉÍÓÚ" * length)[:length]


# --- The limits themselves --------------------------------------------------------------


def _xsd_facets(path: str, attribute: str) -> dict[str, str]:
    """maxLength and pattern of `attribute` of the element at `path` in cfdv40.xsd."""
    node = etree.parse(str(XSD)).getroot()
    for name in path.split("/"):
        node = next(e for e in node.iter(f"{XS}element") if e.get("name") == name)
    found = next(a for a in node.iter(f"{XS}attribute") if a.get("name") == attribute)
    return {f.tag[len(XS) :]: f.get("value") for f in found.iter() if f.get("value")}


@pytest.mark.parametrize(
    ("path", "attribute", "limit"),
    [
        ("Comprobante/Emisor", "Nombre", limits.CFDI_NOMBRE_MAX),
        ("Comprobante/Receptor", "Nombre", limits.CFDI_NOMBRE_MAX),
        ("Comprobante", "Serie", limits.SERIE_MAX),
        ("Comprobante", "Folio", limits.FOLIO_MAX),
        ("Comprobante/Conceptos/Concepto", "Descripcion", limits.DESCRIPCION_MAX),
        ("Comprobante/Conceptos/Concepto", "NoIdentificacion", limits.NO_IDENTIFICACION_MAX),
        ("Comprobante/Conceptos/Concepto", "Unidad", limits.UNIDAD_MAX),
    ],
)
def test_the_limits_are_those_of_the_xsd(path, attribute, limit):
    facets = _xsd_facets(path, attribute)
    assert int(facets["maxLength"]) == limit
    assert facets["pattern"] == f"[^|]{{1,{limit}}}"


def test_the_limits_fit_the_columns_and_the_outbox():
    assert limits.SUBJECT_MAX == outbox.SUBJECT_MAX == MailMessage.subject.type.length
    for column in (Issuer.legal_name, CustomerProfile.name, Invoice.receptor_nombre):
        assert column.type.length == limits.NOMBRE_COLUMN
    assert Issuer.serie.type.length == Invoice.serie.type.length == SERIE_MAX
    assert TicketLine.description.type.length == limits.DESCRIPCION_MAX
    assert NOMBRE_MAX == 254 and LEGAL_NAME_MAX == 205
    assert len(str(limits.MAX_FOLIO)) == limits.FOLIO_DIGITS <= limits.FOLIO_MAX


@pytest.mark.parametrize("locale", ["es", "en"])
def test_the_longest_invoice_subject_fits_in_every_language(app, locale):
    """The legal name's limit leaves room for the longest serie and folio in the invoice
    email's subject, in each translation; and the outbox queues it."""
    invoice = SimpleNamespace(
        serie="Z" * SERIE_MAX,
        folio=limits.MAX_FOLIO,
        issuer=SimpleNamespace(legal_name=_name(LEGAL_NAME_MAX, "")),
    )
    with app.test_request_context(), force_locale(locale):
        subject = render_template("invoicing/email/subject.txt", invoice=invoice).strip()
        assert invoice.issuer.legal_name in subject and str(limits.MAX_FOLIO) in subject
        assert len(subject) <= limits.SUBJECT_MAX
        outbox.queue_mail(db.session, "a@example.com", subject, "texto")
        db.session.rollback()


def test_a_cfdi_at_every_limit_is_valid_and_signs():
    """A CFDI with the longest legal name, receptor nombre, serie, folio and description the
    forms accept passes SAT's schema and is sealed."""
    line = Line(
        ("DESCRIPCIÓN CON ACENTOS Y Ñ " * 40)[: limits.DESCRIPCION_MAX],
        "50202306",
        "H87",
        Decimal("1"),
        Decimal("10.00"),
        "02",
        "Tasa",
        Decimal("0.160000"),
        "9" * limits.NO_IDENTIFICACION_MAX,
    )
    draft = samples.draft(
        emisor_nombre=_name(LEGAL_NAME_MAX, "ESCUELA KEMPER URGATE "),
        receptor_nombre=_name(NOMBRE_MAX),
        serie="Z" * SERIE_MAX,
        folio=limits.MAX_FOLIO,
        lines=(line,),
    )
    xml = sign(build(draft), samples.signer())
    validate(xml)
    root = etree.fromstring(xml)
    assert len(root.find("{http://www.sat.gob.mx/cfd/4}Emisor").get("Nombre")) == LEGAL_NAME_MAX


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("X" * 10, None),
        ("X" * 11, TextProblem.TOO_LONG),
        ("A|B", TextProblem.PIPE),
        ("A\tB", TextProblem.CONTROL),
        ("A\nB", TextProblem.CONTROL),
        ("A\x7fB", TextProblem.CONTROL),
        ("A\x85B", TextProblem.CONTROL),  # C1 control
        ("A\ud800B", TextProblem.CONTROL),  # lone surrogate: UTF-8 cannot encode it
        ("A\uffffB", TextProblem.CONTROL),  # noncharacter: XML refuses it
        ("A\ufdd0B", TextProblem.CONTROL),
        ("ÑÚ «Á»&<Í>", None),  # 10 characters
        ("", None),
        (None, None),
    ],
)
def test_check_text(value, expected):
    assert check_text(value, 10) is expected


def test_check_text_options():
    assert check_text("A|B", 10, pipe=True) is None
    assert check_text("CALLE 1\r\nCOL. CENTRO\tX", 30, line_breaks=True) is None
    assert check_text("CALLE\x07", 30, line_breaks=True) is TextProblem.CONTROL


def test_normalize_nombre_drops_what_the_email_subject_refuses():
    assert normalize_nombre("GAVIOTA\x7f\x85\x9fNUEVA\uffff") == "GAVIOTA NUEVA"
    assert normalize_nombre("GAVIOTA\x01\x1bNUEVA") == "GAVIOTANUEVA"


# --- Issuer: /admin/emisor/fiscal and /admin/emisor/facturacion ---------------------------

FISCAL = {"rfc": "TDG150312K46", "legal_name": LEGAL_NAME, "regimen": "601", "cp": "06000"}
BILLING = {
    "serie": "A",
    "next_folio": "10",
    "window_kind": "days_after",
    "window_days": "15",
    "window_day": "3",
    "formas_pago": ["01", "04"],
    "global_policy": "refuse",
    "global_periodicity": "04",
}


def _issuer(app) -> Issuer:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        db.session.expunge(issuer)
        return issuer


def _error(html: str, name: str) -> str:
    """The message shown next to field `name`."""
    found = re.search(rf'id="{name}-error"[^>]*>(.*?)</', html, re.S)
    assert found is not None, f"no message next to {name}"
    return found.group(1)


@pytest.fixture
def admin(client, staff, admin_login):
    admin_login(client, staff["admin"])
    return client


@pytest.mark.parametrize("length", [250, LEGAL_NAME_MAX + 1, NOMBRE_MAX, 300])
def test_a_legal_name_too_long_for_the_email_subject_is_refused(app, admin, length):
    response = admin.post("/admin/emisor/fiscal", data=dict(FISCAL, legal_name=_name(length)))
    assert response.status_code == 422
    message = _error(response.get_data(as_text=True), "legal_name")
    assert f"como máximo {LEGAL_NAME_MAX} caracteres (tiene {length})" in message
    assert "asunto del correo" in message
    assert _issuer(app).legal_name == LEGAL_NAME


def test_a_legal_name_at_the_limit_is_saved(app, admin):
    name = _name(LEGAL_NAME_MAX, "GAVIOTA ")
    response = admin.post("/admin/emisor/fiscal", data=dict(FISCAL, legal_name=f"  {name}  "))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert _issuer(app).legal_name == name
    page = admin.get("/admin/emisor").get_data(as_text=True)
    assert f'maxlength="{LEGAL_NAME_MAX}"' in page


def test_a_legal_name_with_a_pipe_is_refused(app, admin):
    response = admin.post("/admin/emisor/fiscal", data=dict(FISCAL, legal_name="GAVIOTA | SUR"))
    assert response.status_code == 422
    assert "«|»" in _error(response.get_data(as_text=True), "legal_name")
    assert _issuer(app).legal_name == LEGAL_NAME


def test_invisible_characters_are_dropped_from_the_legal_name(app, admin):
    """DEL and C1 controls (the email subject refuses them) never reach the database."""
    typed = "GAVIOTA\x7f NUEVA\x85SUR\x9b"
    response = admin.post("/admin/emisor/fiscal", data=dict(FISCAL, legal_name=typed))
    assert response.status_code == 303
    assert _issuer(app).legal_name == "GAVIOTA NUEVA SUR"


@pytest.mark.parametrize(
    ("serie", "message"),
    [
        ("Z" * (SERIE_MAX + 1), f"como máximo {SERIE_MAX} caracteres (tiene {SERIE_MAX + 1})"),
        ("A|B", f"de 1 a {SERIE_MAX} letras, números o guiones"),
        ("A\tB", f"de 1 a {SERIE_MAX} letras, números o guiones"),
    ],
)
def test_a_bad_serie_is_refused(app, admin, serie, message):
    response = admin.post("/admin/emisor/facturacion", data=dict(BILLING, serie=serie))
    assert response.status_code == 422
    assert message in _error(response.get_data(as_text=True), "serie")
    assert _issuer(app).serie == "A" and _issuer(app).window_policy == "until_day_next_month:3"


def test_a_serie_at_the_limit_is_saved(app, admin):
    response = admin.post("/admin/emisor/facturacion", data=dict(BILLING, serie="z" * SERIE_MAX))
    assert response.status_code == 303
    assert _issuer(app).serie == "Z" * SERIE_MAX


def test_the_longest_legal_name_serie_and_folio_invoice_and_email(app, client, demo):
    """The original failure, end to end: with the longest legal name, serie and folio the
    forms accept, a ticket is stamped and its email queued."""
    name = _name(LEGAL_NAME_MAX, "GAVIOTA ")
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.legal_name, issuer.serie = name, "Z" * SERIE_MAX
        issuer.next_folio = limits.MAX_FOLIO - 1
        db.session.commit()
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    response = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPED
        assert len(str(invoice.folio)) == limits.FOLIO_DIGITS
        mail = db.session.scalars(select(MailMessage)).one()
        assert name in mail.subject and len(mail.subject) <= limits.SUBJECT_MAX


# --- Branches and kiosks ------------------------------------------------------------------

BRANCH = {"code": "SUR-2", "name": "Sucursal Sur", "cp": "06600", "address": "Av. Sur 12"}


def _branches(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Branch))


@pytest.mark.parametrize(
    ("changes", "name", "message"),
    [
        ({"name": "S" * 121}, "name", "Máximo 120 caracteres."),
        ({"name": "Sucursal\x07Sur"}, "name", "caracteres de control"),
        ({"name": "Sucursal\nSur"}, "name", "caracteres de control"),
        ({"address": "x" * 501}, "address", "Máximo 500 caracteres."),
        ({"address": "Av. Sur 12\x1b[31m"}, "address", "caracteres de control"),
        ({"cp": "0660|"}, "cp", "5 dígitos"),
    ],
)
def test_bad_branch_text_is_refused(app, admin, changes, name, message):
    before = _branches(app)
    response = admin.post("/admin/sucursales/nueva", data=dict(BRANCH, **changes))
    assert response.status_code == 422
    assert message in _error(response.get_data(as_text=True), name)
    assert _branches(app) == before


def test_branch_text_at_the_limit_is_saved(app, admin):
    data = dict(BRANCH, name="S" * 120, address="Av. Sur 12\r\nCol. Centro | Local 3")
    response = admin.post("/admin/sucursales/nueva", data=data)
    assert response.status_code == 303
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.code == "SUR-2"))
        assert branch.name == "S" * 120 and "\n" in branch.address


def test_a_kiosk_name_is_checked_too(app, admin):
    with app.app_context():
        centro = db.session.scalar(select(Branch).where(Branch.code == "CENTRO"))
    url = f"/admin/sucursales/{centro.id}/quioscos/nuevo"
    for name, message in (("K" * 81, "Máximo 80 caracteres."), ("Caja\t1", "de control")):
        response = admin.post(url, data={"name": name})
        assert response.status_code == 422
        assert message in _error(response.get_data(as_text=True), "name")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Kiosk)) == 0
    assert admin.post(url, data={"name": "K" * 80}).status_code == 303


# --- Receptor: the ticket flow, the profile, the replacement -------------------------------


@pytest.fixture
def customer(app, client):
    """A client signed in to a complete account (RFC XOJI740919U48)."""
    complete(app, client, "modern")
    return client


def _profile(app) -> CustomerProfile | None:
    with app.app_context():
        return db.session.scalars(select(CustomerProfile)).one_or_none()


def _replacement(app, public_id: str) -> Invoice | None:
    with app.app_context():
        original = load(public_id)
        return db.session.scalar(select(Invoice).where(Invoice.replaces_id == original.id))


def _campo(html: str, name: str) -> str:
    return re.search(rf'id="campo-{name}".*?</div>', html, re.S).group(0)


@pytest.mark.parametrize(
    ("nombre", "message"),
    [
        (_name(NOMBRE_MAX + 1), f"como máximo {NOMBRE_MAX} caracteres"),
        (_name(300), f"como máximo {NOMBRE_MAX} caracteres"),
        ("INGRID | XODAR", "«|»"),
    ],
)
def test_the_ticket_flow_refuses_a_bad_nombre(app, client, demo, nombre, message):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    response = client.post("/facturar/demo/ticket", data=ticket_data(t, key, nombre=nombre))
    assert response.status_code == 422
    assert message in _campo(response.get_data(as_text=True), "nombre")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.OPEN


def test_the_ticket_flow_stamps_a_nombre_at_the_limit(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert f'maxlength="{NOMBRE_MAX}"' in _campo(page, "nombre")
    nombre = _name(NOMBRE_MAX)
    response = client.post("/facturar/demo/ticket", data=ticket_data(t, key, nombre=nombre))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPED and invoice.receptor_nombre == nombre


@pytest.mark.parametrize(
    ("nombre", "message"),
    [
        (_name(NOMBRE_MAX + 1), f"como máximo {NOMBRE_MAX} caracteres"),
        ("INGRID | XODAR", "«|»"),
    ],
)
def test_the_profile_refuses_a_bad_nombre(app, customer, nombre, message):
    response = customer.post("/cuenta/perfil/", data=dict(PROFILE, nombre=nombre))
    assert response.status_code == 422
    assert message in _campo(response.get_data(as_text=True), "nombre")
    assert _profile(app) is None


def test_the_profile_keeps_a_nombre_at_the_limit(app, customer):
    nombre = _name(NOMBRE_MAX)
    response = customer.post("/cuenta/perfil/", data=dict(PROFILE, nombre=nombre))
    assert response.status_code == 303
    assert _profile(app).name == nombre


@pytest.mark.parametrize(
    ("nombre", "message"),
    [
        (_name(NOMBRE_MAX + 1), f"como máximo {NOMBRE_MAX} caracteres"),
        ("INGRID | XODAR", "«|»"),
    ],
)
def test_the_replacement_refuses_a_bad_nombre(
    app, client, staff, admin_login, demo, nombre, message
):
    public_id = make_invoice(app, SMALL)
    admin_login(client, staff["admin"])
    url = f"/admin/facturas/{public_id}/sustituir"
    response = client.post(url, data=dict(REPLACE, nombre=nombre))
    assert response.status_code == 422
    assert message in field(response.get_data(as_text=True), "nombre")
    assert _replacement(app, public_id) is None
    with app.app_context():
        assert load(public_id).status is InvoiceStatus.STAMPED


# --- The point of sale's API (and CSV, through the same checks) -----------------------------


@pytest.fixture
def api_key(app, staff):
    return make_api_key(app)


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def count_tickets(app, number: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Ticket.ticket_number == number))


def _with_description(description: str, number: str = "90000001") -> dict:
    payload = api_ticket(number)
    payload["lines"][2]["description"] = description
    return payload


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("D" * (limits.DESCRIPCION_MAX + 1), f"Máximo {limits.DESCRIPCION_MAX} caracteres."),
        ("PERIODICO | DEL DIA", "«|»"),
        ("PERIODICO\tDEL DIA", "caracteres de control"),
        ("PERIODICO\x7f", "caracteres de control"),
        ("PERIODICO \ud800", "caracteres de control"),  # a lone surrogate: no 500
        ("PERIODICO \uffff", "caracteres de control"),
    ],
)
def test_the_api_refuses_a_bad_description(app, client, api_key, description, message):
    response = client.post(API_URL, json=_with_description(description), headers=auth(api_key))
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert message in fields(response)["lines[2].description"]
    assert count_tickets(app, "90000001") == 0


def test_the_api_takes_a_description_at_the_limit(app, client, api_key):
    description = ("PERIÓDICO DEL DÍA Ñ " * 60)[: limits.DESCRIPCION_MAX].strip() + "X"
    description = description.ljust(limits.DESCRIPCION_MAX, "X")
    response = client.post(API_URL, json=_with_description(description), headers=auth(api_key))
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    with app.app_context():
        stored = db.session.scalar(
            select(TicketLine.description).where(TicketLine.position == 3).join(Ticket)
            .where(Ticket.ticket_number == "90000001")
        )  # fmt: skip
    assert stored == description


def test_the_api_refuses_a_branch_or_field_with_a_lone_surrogate(app, client, api_key):
    """Not a 500: the value is neither looked up nor echoed as it came."""
    payload = api_ticket(branch="CEN\ud800", **{"nota\ud800": "x"})
    response = client.post(API_URL, json=payload, headers=auth(api_key))
    assert response.status_code == 422
    errors = fields(response)
    assert errors["branch"] == "No hay una sucursal con la clave «CEN\ufffd»."
    assert "nota\ufffd" in errors
    assert count_tickets(app, "90000001") == 0


def test_the_description_message_speaks_english_too(client, api_key):
    client.post("/idioma", data={"lang": "en", "next": "/"})  # the portal's language cookie
    payload = _with_description("D" * (limits.DESCRIPCION_MAX + 1))
    response = client.post(API_URL, json=payload, headers=auth(api_key))
    assert response.status_code == 422
    message = fields(response)["lines[2].description"]
    assert message == f"At most {limits.DESCRIPCION_MAX} characters."
