"""Invoicing a ticket, as a customer without JavaScript would and with htmx's fragments."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select

from tests.flows import RFC, registered_account, start, ticket_data
from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus, MailMessage, Ticket, TicketStatus

CFDI = "{http://www.sat.gob.mx/cfd/4}"
TFD = "{http://www.sat.gob.mx/TimbreFiscalDigital}"


def test_branch_to_stamped_invoice_without_javascript(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    result = client.get(r.headers["Location"])
    html = result.get_data(as_text=True)
    assert "Su factura está lista" in html
    uuid = re.search(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", html).group(0)

    xml_link = re.search(r'href="([^"]+\.xml)"', html).group(1)
    xml = client.get(xml_link)
    assert xml.status_code == 200 and "attachment" in xml.headers["Content-Disposition"]
    root = etree.fromstring(xml.data)
    assert root.get("Total") == f"{t['total']:.2f}"
    assert root.find(f"{CFDI}Receptor").get("Rfc") == RFC
    assert root.find(f"{CFDI}Complemento/{TFD}TimbreFiscalDigital").get("UUID") == uuid
    pdf = client.get(xml_link[:-4] + ".pdf")
    assert pdf.data.startswith(b"%PDF")

    with app.app_context():
        ticket = db.session.get(Ticket, t["id"])
        assert ticket.status is TicketStatus.INVOICED
        mail = db.session.scalars(select(MailMessage)).one()
        assert mail.to_addrs == "ingrid@example.com"
        assert {a.filename[-3:] for a in mail.attachments} == {"xml", "pdf"}


def test_typos_are_normalised(client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"], rfc=" xoji-740919-u48 ")
    number = t["number"].replace("0", "O").replace("1", "l")
    spaced = " ".join([number[:3], number[3:]])
    r = client.post(
        "/facturar/demo/ticket",
        data=ticket_data(
            t,
            key,
            ticket_number=spaced,
            order_number="-".join(t["order"]),
            total=f"$ {t['total']:,.2f}",
        ),
    )
    assert r.status_code == 303, r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ticket_number", "999999999999", "No encontramos ese número de ticket"),
        ("order_number", "1", "El número de orden no corresponde"),
        ("total", "0.01", "El total no coincide"),
        ("total", "doce", "Escriba el total con números"),
        ("ticket_number", "12ab", "Escriba sólo los números"),
    ],
)
def test_ticket_problems_next_to_the_field(client, demo, field, value, message):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key, **{field: value}))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    wrapper = re.search(rf'<div class="field invalid" id="campo-{field}".*?</div>', html, re.S)
    assert wrapper and message in wrapper.group(0)

    # The same check inline, as htmx asks for it when the customer leaves the field.
    fragment = client.post(
        f"/facturar/demo/ticket/campo/{field}",
        data=ticket_data(t, key, **{field: value}),
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200  # the fragment answers; only the full submit is a 422
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith(f'<div class="field invalid" id="campo-{field}"')
    assert message in body and "<html" not in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_valid_field_inline_shows_no_error(client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    fragment = client.post(
        "/facturar/demo/ticket/campo/total",
        data=ticket_data(t, key),
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert "field-error" not in fragment.get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nombre", "Ingrid Xodar Jimenez", "en mayúsculas"),
        ("cp", "00000", "no está en el catálogo del SAT"),
        ("regimen", "601", "no corresponde al tipo de persona"),
        ("uso_cfdi", "D01", "no está permitido para el régimen"),
        ("email", "no-es-correo", "correo electrónico válido"),
    ],
)
def test_receptor_rules_next_to_the_field(app, client, demo, field, value, message):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    data = ticket_data(t, key, **{field: value})
    if field == "uso_cfdi":
        data["regimen"] = "616"
    r = client.post("/facturar/demo/ticket", data=data)
    assert r.status_code == 422
    wrapper = re.search(rf'id="campo-{field}".*?</div>', r.get_data(as_text=True), re.S)
    assert message in wrapper.group(0)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.OPEN


def test_company_suffix_is_refused_for_a_moral_rfc(client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"], rfc="EKU9003173C9")
    r = client.post(
        "/facturar/demo/ticket",
        data=ticket_data(t, key, nombre="ESCUELA KEMPER URGATE SA DE CV", regimen="601"),
    )
    assert r.status_code == 422
    assert "sin el régimen societario" in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("rfc", "message"),
    [
        ("XAXX010101000", "RFC genérico"),
        ("XOJI740919U40", "dígito verificador"),
        ("ABC", "12 caracteres"),
    ],
)
def test_rfc_step_refuses_bad_and_generic_rfcs(client, demo, rfc, message):
    client.post("/facturar/demo/", data={"branch": str(demo["fresh"][0]["branch_id"])})
    r = client.post("/facturar/demo/rfc", data={"rfc": rfc})
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    inline = client.post(
        "/facturar/demo/rfc",
        data={"rfc": rfc},
        headers={"HX-Request": "true", "HX-Target": "campo-rfc"},
    )
    assert inline.status_code == 200 and message in inline.get_data(as_text=True)
    assert "<html" not in inline.get_data(as_text=True)


def test_only_valid_choices_for_the_rfc(client, demo):
    start(client, demo["fresh"][0]["branch_id"], rfc="EKU9003173C9")
    html = client.get("/facturar/demo/ticket").get_data(as_text=True)
    regimenes = re.findall(r'<option value="(\d{3})"', html)
    assert "601" in regimenes and "612" not in regimenes and "605" not in regimenes


def test_outside_the_window(client, demo):
    t = demo["old"]
    assert t["sold_at"] < datetime.now(UTC) - timedelta(days=40)
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 422 and "El plazo para facturar" in r.get_data(as_text=True)


def test_already_invoiced_offers_resend_without_receptor_data(app, client, demo, make_app):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    assert client.post("/facturar/demo/ticket", data=ticket_data(t, key)).status_code == 303

    other = app.test_client()
    key2 = start(other, t["branch_id"], rfc="CACX7605101P8")
    r = other.post(
        "/facturar/demo/ticket",
        data=ticket_data(t, key2, nombre="OTRA PERSONA", email="otra@example.com"),
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "Este ticket ya fue facturado" in html
    assert "Reenviar la factura" in html
    assert "ingrid" not in html.lower() and RFC not in html
    resent = other.post("/facturar/demo/reenviar", data=ticket_data(t, key2, email="x@x.mx"))
    assert resent.status_code == 200 and "ingrid" not in resent.get_data(as_text=True).lower()
    with app.app_context():
        mails = db.session.scalars(select(MailMessage)).all()
        assert [m.to_addrs for m in mails] == ["ingrid@example.com", "ingrid@example.com"]
    # A second resend right away sends nothing more.
    other.post("/facturar/demo/reenviar", data=ticket_data(t, key2))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MailMessage)) == 2


def test_several_tickets_one_invoice(app, client, demo):
    first, second = demo["fresh"][:2]
    key = start(client, first["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(first, key, action="add"))
    assert r.status_code == 200 and "Tickets en esta factura" in r.get_data(as_text=True)
    r = client.post("/facturar/demo/ticket", data=ticket_data(second, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.total == first["total"] + second["total"]
        assert {t.id for t in invoice.tickets} == {first["id"], second["id"]}
        root = etree.fromstring(invoice.xml)
        assert Decimal(root.get("Total")) == invoice.total


def test_double_submit_gives_one_invoice(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    first = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    again = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert first.status_code == 303
    assert again.headers.get("Location") == first.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_twenty_concurrent_generates_make_one_invoice(app, demo):
    t = demo["fresh"][0]
    client = app.test_client()
    key = start(client, t["branch_id"])
    cookie = client.get_cookie("session").value
    answers, barrier = [], threading.Barrier(20)

    def generate():
        c = app.test_client()
        c.set_cookie("session", cookie)
        barrier.wait()
        r = c.post("/facturar/demo/ticket", data=ticket_data(t, key))
        answers.append((r.status_code, r.headers.get("Location")))

    threads = [threading.Thread(target=generate) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(answers)) == 1 and answers[0][0] == 303, answers
    with app.app_context():
        invoices = db.session.scalars(select(Invoice)).all()
        assert len(invoices) == 1 and invoices[0].status is InvoiceStatus.STAMPED
        assert invoices[0].folio == 1


def test_nobody_else_sees_the_invoice(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    location = client.post("/facturar/demo/ticket", data=ticket_data(t, key)).headers["Location"]
    stranger = app.test_client()
    assert stranger.get(location).status_code == 404
    assert stranger.get(location + ".xml").status_code == 404
    assert stranger.get(location + ".pdf").status_code == 404


def test_email_from_the_result_page(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    location = client.post("/facturar/demo/ticket", data=ticket_data(t, key)).headers["Location"]
    bad = client.post(location + "/correo", data={"email": "a@b.com, nope"})
    assert bad.status_code == 422 and "correo electrónico válido" in bad.get_data(as_text=True)
    ok = client.post(location + "/correo", data={"email": "a@b.com; c@d.mx"})
    assert ok.status_code == 303
    assert "Enviamos la factura" in client.get(ok.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        sent = db.session.scalars(select(MailMessage).order_by(MailMessage.id)).all()
        assert sent[-1].to_addrs.replace(" ", "") == "a@b.com,c@d.mx"


def test_sandbox_certificate_is_served(client, demo):
    r = client.get("/sandbox/pac.cer")
    assert r.status_code == 200 and r.data[:1] == b"\x30"  # DER SEQUENCE


def test_choosing_a_regimen_refreshes_the_usos(client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    r = client.post(
        "/facturar/demo/ticket/campo/regimen",
        data=ticket_data(t, key, regimen="616", uso_cfdi=""),
        headers={"HX-Request": "true"},
    )
    body = r.get_data(as_text=True).strip()
    assert body.startswith('<div class="field" id="campo-regimen"')
    uso = body[body.index('id="campo-uso_cfdi"') :]
    assert 'hx-swap-oob="true"' in uso
    assert set(re.findall(r'<option value="(\w+)"', uso)) == {"G02", "S01", "CP01"}


def test_an_old_key_with_another_ticket_is_a_new_invoice(app, client, demo):
    first, second = demo["fresh"][:2]
    key = start(client, first["branch_id"])
    a = client.post("/facturar/demo/ticket", data=ticket_data(first, key)).headers["Location"]
    # The back button brings the old form (and its key) back; another ticket is typed.
    b = client.post("/facturar/demo/ticket", data=ticket_data(second, key))
    assert b.status_code == 303 and b.headers["Location"] != a
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 2


def test_nul_anywhere_is_a_400(client, demo):
    assert client.get("/facturar/demo%00/").status_code == 400
    assert client.get("/?q=%00").status_code == 400
    assert (
        client.post("/cuenta/entrar", data={"identifier": "a\x00", "password": "x"}).status_code
        == 400
    )


def test_a_signed_in_customer_gets_their_data_filled_in(app, client, demo):
    password = registered_account(app)  # XOJI740919U48, ingrid@example.com
    first, second = demo["fresh"][:2]
    r = client.post("/cuenta/entrar", data={"identifier": RFC, "password": password})
    assert r.status_code == 303
    key = start(client, first["branch_id"])
    page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert 'value="ingrid@example.com"' in page  # the account's email to begin with
    assert client.post("/facturar/demo/ticket", data=ticket_data(first, key)).status_code == 303
    start(client, second["branch_id"])
    page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert 'value="INGRID XODAR JIMENEZ"' in page and 'value="76028"' in page
    assert re.search(r'<option selected value="612">', page)
    # Another RFC typed by the same person, or anyone not signed in: nothing is filled in.
    other = app.test_client()
    start(other, second["branch_id"])
    assert "INGRID" not in other.get("/facturar/demo/ticket").get_data(as_text=True)
    start(client, second["branch_id"], rfc="CACX7605101P8")
    assert "INGRID" not in client.get("/facturar/demo/ticket").get_data(as_text=True)


def test_several_merchants_are_listed(client, demo, staff):
    # `staff` adds a second issuer; with one only, /facturar/ redirects (see start()).
    page = client.get("/facturar/").get_data(as_text=True)
    assert "TIENDAS DEMO LA GAVIOTA" in page and "ESCUELA KEMPER URGATE" in page


def test_one_merchant_goes_straight_to_its_branches(client, demo):
    assert client.get("/facturar/").headers["Location"].endswith("/facturar/demo/")
