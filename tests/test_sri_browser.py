"""Ecuador in a real Chromium, as a newcomer tries it (#16 "done when"): register with the
Ecuadorian demo provider, add a line with the code read at /dev/sms, open a past bill as a
RIDE whose barcode decodes to a valid clave de acceso, download its XML (valid against SRI's
XSD, its XAdES signature verified by tests/xades.py); and invoice a ticket of the Ecuadorian
demo shop with a cédula. The mail and SMS workers run beside the server, as under
`make run`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from lxml import etree
from playwright.sync_api import expect
from sqlalchemy import select

from tests.flows import (
    activate_and_sign_in,
    ask_line_code,
    barcodes_in,
    enter_line_code,
    open_activation_email,
    register_holder,
    text_of,
)
from tests.xades import verify
from webapp import crypto
from webapp.demo import ecuador
from webapp.extensions import db
from webapp.models import Branch, Issuer, Ticket, TicketStatus
from webapp.sri import access_key as keys
from webapp.sri.p12 import certificate_ruc
from webapp.sri.xsd import validate
from webapp.wiring import stamping

pytestmark = pytest.mark.browser

EMAIL = "nuevo.cliente@example.com"
PASSWORD = "caballo bateria grapa correcta"
CEDULA = "1710034065"


@pytest.fixture
def app(make_app):
    return make_app(DEV_MAILBOX=True)


@pytest.fixture
def ec_demo(app):
    """The Ecuadorian demo, small: its telecom billed for its last two periods, its shop."""
    now = datetime.now(UTC)
    with app.app_context():
        ecuador.load_ecuador_demo(
            db.session, crypto.cipher_from_config(app.config), now, accounts=4, lines=4, tickets=3
        )
        bills = ecuador.load_ecuador_history(db.session, stamping(), now, months=2)
        assert bills == 2 * 4
        ticket = db.session.scalars(
            select(Ticket)
            .join(Branch)
            .join(Issuer)
            .where(Issuer.slug == ecuador.SHOP_SLUG, Ticket.status == TicketStatus.OPEN)
            .order_by(Ticket.id)
        ).first()
        return {
            "order": ticket.order_number,
            "number": ticket.ticket_number,
            "total": f"{ticket.total:.2f}",
            "branch": ticket.branch.name,
        }


def _check_factura(xml: bytes, ruc: str) -> str:
    """The factura is valid against SRI's XSD, its signature verifies with the certificate
    it carries, which names the issuer's RUC; its clave de acceso."""
    validate(xml, signed=True)
    certificate = verify(xml)
    assert certificate_ruc(certificate) == ruc
    clave = etree.fromstring(xml).findtext("infoTributaria/claveAcceso")
    assert keys.is_valid(clave)
    return clave


def test_a_newcomer_adds_an_ecuadorian_line_and_opens_a_past_bill_as_a_ride(
    app, ec_demo, workers, tab, live_server
):
    page, base = tab, live_server
    page.goto(f"{base}/servicios/{ecuador.SERVICES_SLUG}/")
    page.get_by_role("link", name="¿Nuevo? Regístrate aquí").click()
    register_holder(
        app,
        page,
        {
            "Correo electrónico": EMAIL,
            "Nombres": "Mateo",
            "Apellidos": "Guerrero Salazar",
            "Cédula/Pasaporte": CEDULA,
        },
        PASSWORD,
    )
    open_activation_email(page, base)
    activate_and_sign_in(page, base, ecuador.SERVICES_SLUG, EMAIL, PASSWORD)
    number = ecuador.mobile_number(0)  # +593998000000, nationally 099 800 0000
    code_field = ask_line_code(page, "Móvil", "099 800 0000")
    enter_line_code(page, base, number, code_field)
    expect(page.get_by_role("link", name="Consultar").first).to_be_visible()

    page.get_by_role("link", name="Facturación").click()
    ver = page.get_by_role("link", name="Ver Factura")
    expect(ver).to_have_count(2)
    ver.last.click()  # the older cycle
    expect(page.get_by_text(re.compile("número de autorización"))).to_be_visible()
    ride_link = page.get_by_role("link", name="Descargar RIDE (PDF)")
    xml_link = page.get_by_role("link", name="Descargar XML")
    ride = page.request.get(base + ride_link.get_attribute("href"))
    xml = page.request.get(base + xml_link.get_attribute("href"))
    assert ride.ok and xml.ok
    clave = _check_factura(xml.body(), ecuador.SERVICES_RUC)
    assert barcodes_in(ride.body()) == [clave]
    text = text_of(ride.body())
    assert "FACTURA" in text and clave in text
    assert page.errors == []


def test_a_customer_invoices_an_ecuadorian_ticket_with_a_cedula(app, ec_demo, tab, live_server):
    page, base, ticket = tab, live_server, ec_demo
    page.goto(f"{base}/facturar/{ecuador.SHOP_SLUG}/")
    page.get_by_label(ticket["branch"]).check()
    page.get_by_label("Tipo de identificación").select_option("05")  # Cédula
    page.get_by_label("Identificación", exact=True).fill(CEDULA)
    page.get_by_role("button", name="Siguiente").click()
    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    page.get_by_label("Total del ticket", exact=True).fill(ticket["total"])
    page.get_by_label("Razón social / Nombres y apellidos").fill("Mateo Guerrero Salazar")
    page.get_by_label("Dirección").fill("Av. Shyris N35-17, Quito")
    page.get_by_label("Correo electrónico").fill(EMAIL)
    page.get_by_role("button", name="Generar factura").click()
    expect(page.get_by_text("Factura electrónica autorizada por el SRI")).to_be_visible()
    xml = page.request.get(
        base + page.get_by_role("link", name=re.compile("XML")).first.get_attribute("href")
    )
    assert xml.ok
    _check_factura(xml.body(), ecuador.SHOP_RUC)
    assert CEDULA.encode() in xml.body() and b"MATEO GUERRERO SALAZAR" in xml.body()
    assert page.errors == []
