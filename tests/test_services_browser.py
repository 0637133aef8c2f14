"""Monthly service bills in a real Chromium, as a newcomer tries them (#15 "done when"):
register with the seed's fields, activate by the link read at /dev/mail, sign in, add a line
with the code read at /dev/sms, open the bill of a past cycle (its XML valid, its PDF readable)
and the statement of account. The mail and SMS workers run beside the server, as under
`make run`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.flows import (
    activate_and_sign_in,
    ask_line_code,
    enter_line_code,
    open_activation_email,
    register_holder,
    text_of,
)
from webapp.cfdi.xsd import validate
from webapp.demo.services import load_history, mobile_number
from webapp.extensions import db
from webapp.wiring import stamping

pytestmark = pytest.mark.browser

EMAIL = "nueva.clienta@example.com"
PASSWORD = "caballo bateria grapa correcta"


@pytest.fixture
def app(make_app):
    return make_app(DEV_MAILBOX=True)


@pytest.fixture
def history(app, telecom):
    """The provider billed its last two periods (the billing run, with payments between)."""
    with app.app_context():
        bills = load_history(db.session, stamping(), datetime.now(UTC), months=2)
    assert bills == 2 * telecom["accounts"]


def test_a_newcomer_registers_adds_a_line_and_opens_a_past_bill(
    app, history, workers, tab, live_server
):
    page, base = tab, live_server
    page.goto(base + "/servicios/telcel-demo/")
    page.get_by_role("link", name="¿Nuevo? Regístrate aquí").click()

    # 1.1: the seed's registration form.
    register_holder(
        app,
        page,
        {
            "Correo electrónico": EMAIL,
            "Nombres": "Ingrid",
            "Apellidos": "Xodar Jiménez",
            "RFC": "XOJI740919U48",
        },
        PASSWORD,
    )

    # 1.2: the activation email, read where a newcomer reads it under `make run`.
    open_activation_email(page, base)
    expect(page.get_by_text("Xodar Jiménez").first).to_be_visible()  # the data entered
    assert PASSWORD not in page.content()

    # 1.3: sign in; Mis servicios.
    activate_and_sign_in(page, base, "telcel-demo", EMAIL, PASSWORD)

    # 1.4, 2.1, 2.2: a mobile line, its code by SMS (read at /dev/sms), Aceptar.
    number = mobile_number(0)  # account 100000, whose holder gave fiscal data
    code_field = ask_line_code(page, "Móvil", "55 8000 0000")
    assert code_field.get_attribute("inputmode") == "numeric"
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    enter_line_code(page, base, number, code_field)
    # 2.3: the line is listed, with Consultar.
    expect(page.get_by_text(number[3:]).first).to_be_visible()
    page.get_by_role("link", name="Consultar").first.click()
    expect(page.get_by_text("Plan Conecta").first).to_be_visible()

    # 3.1, 3.2: Facturación → the cycles → Ver Factura of a past cycle.
    page.get_by_role("link", name="Facturación").click()
    ver = page.get_by_role("link", name="Ver Factura")
    expect(ver).to_have_count(2)
    ver.last.click()  # the older cycle
    xml_link = page.get_by_role("link", name=re.compile("XML"))
    pdf_link = page.get_by_role("link", name=re.compile("PDF"))
    xml = page.request.get(base + xml_link.get_attribute("href"))
    assert xml.ok
    validate(xml.body())  # the stamped CFDI, valid against SAT's XSD
    assert b"XOJI740919U48" in xml.body()
    pdf = page.request.get(base + pdf_link.first.get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert "INGRID XODAR JIMENEZ" in text_of(pdf.body())

    # 3.3: Estado de cuenta, top right, as a page and as a PDF.
    page.get_by_role("link", name="Estado de cuenta").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Estado de cuenta")
    expect(page.get_by_text(re.compile("Saldo anterior")).first).to_be_visible()
    statement = page.get_by_role("link", name=re.compile("PDF"))
    statement_pdf = page.request.get(base + statement.first.get_attribute("href"))
    assert statement_pdf.ok and "Estado de cuenta" in text_of(statement_pdf.body())
    assert page.errors == []
