"""Back office: /admin/factura-global — preview, stamp, list, download, correct, scoping."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree
from sqlalchemy import func, select

from tests.flows import last_closed_day, period_tickets, start, ticket_data
from webapp.admin.globals import error_message
from webapp.cfdi.xsd import validate
from webapp.extensions import db
from webapp.issuing import global_invoice as gi
from webapp.models import Invoice, InvoiceStatus, TicketStatus

URL = "/admin/factura-global"
CFDI = "{http://www.sat.gob.mx/cfd/4}"


def _closed_day(app):
    with app.app_context():
        branch, period, _now = last_closed_day(app)
        tickets = period_tickets(branch, period)
        return {
            "branch": branch.id,
            "day": period.start.isoformat(),
            "count": len(tickets),
            "total": sum(t.total for t in tickets),
            "last_data": {
                "order": tickets[-1].order_number,
                "number": tickets[-1].ticket_number,
                "total": tickets[-1].total,
                "branch_id": branch.id,
            },
        }


def _preview(client, day):
    return client.get(
        URL, query_string={"branch": day["branch"], "periodicity": "01", "day": day["day"]}
    )


def _stamp(client, day, page_html):
    key = re.search(r'name="key" type="hidden" value="([^"]*)"', page_html).group(1)
    data = {"branch": day["branch"], "periodicity": "01", "day": day["day"], "key": key}
    return client.post(URL, data=data), data


def _globals(app):
    with app.app_context():
        return db.session.scalars(
            select(Invoice).where(Invoice.is_global).order_by(Invoice.id)
        ).all()


def test_preview_then_stamp_a_global_invoice(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = client.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert (
        "Factura global" in html and '<option selected value="01">' in html
    )  # issuer's periodicity

    day = _closed_day(app)
    preview = _preview(client, day)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert f"<dd>{day['count']}</dd>" in html
    assert f"{day['total']:,.2f}" in html
    assert "Timbrar factura global" in html

    response, data = _stamp(client, day, html)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    again = client.post(URL, data=data)  # a double submit
    assert again.status_code == 303
    (glob,) = _globals(app)
    assert glob.status is InvoiceStatus.STAMPED and glob.total == day["total"]

    listing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Factura global timbrada." in listing and f"{glob.serie}-{glob.folio}" in listing
    xml = client.get(f"{URL}/{glob.public_id}.xml")
    assert xml.status_code == 200 and "attachment" in xml.headers["Content-Disposition"]
    validate(xml.data)
    root = etree.fromstring(xml.data)
    assert root.find(f"{CFDI}InformacionGlobal").get("Periodicidad") == "01"
    assert root.find(f"{CFDI}Receptor").get("Rfc") == "XAXX010101000"
    pdf = client.get(f"{URL}/{glob.public_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    # The period again: nothing left to stamp.
    html = _preview(client, day).get_data(as_text=True)
    assert "No hay tickets sin facturar" in html and "Timbrar factura global" not in html
    assert "Ya hay factura global de este periodo" in html


def test_a_period_not_over_is_refused(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    today = gi.local_today(datetime.now(UTC)).isoformat()
    with app.app_context():
        branch, _period, _now = last_closed_day(app)
        branch_id = branch.id
    data = {"branch": branch_id, "periodicity": "04", "day": today}
    html = client.get(URL, query_string=data).get_data(as_text=True)
    assert "aún no termina" in html and "Timbrar factura global" not in html
    response = client.post(URL, data=data)
    assert response.status_code == 422
    assert "aún no termina" in response.get_data(as_text=True)
    assert client.post(URL, data={"branch": branch_id, "periodicity": "01"}).status_code == 422
    assert _globals(app) == []


def test_a_period_not_over_is_refused_in_the_readers_language(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    client.post("/idioma", data={"lang": "en", "next": URL})
    today = gi.local_today(datetime.now(UTC)).isoformat()
    with app.app_context():
        branch_id = last_closed_day(app)[0].id
    data = {"branch": branch_id, "periodicity": "04", "day": today}
    response = client.post(URL, data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "That period has not ended yet" in html and "aún no termina" not in html


def test_every_global_error_has_a_message(app):
    with app.test_request_context("/"):
        refused = error_message(gi.GlobalError("cancel_refused", "CFDI no encontrado"))
        assert refused == "No se pudo cancelar la factura global: CFDI no encontrado"
        assert error_message(gi.GlobalError("periodicity", "09")) == (
            "Elija una periodicidad de la lista."
        )
        assert error_message(gi.GlobalError("something_new")).startswith("No se pudo hacer")


def test_branch_staff_cannot_open_it(client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get(URL).status_code == 403


def test_other_issuer_cannot_see_or_stamp_demos_globals(app, client, staff, admin_login):
    day = _closed_day(app)
    admin_login(client, staff["admin"])
    html = _preview(client, day).get_data(as_text=True)
    assert _stamp(client, day, html)[0].status_code == 303
    (glob,) = _globals(app)

    other = app.test_client()
    admin_login(other, staff["other_admin"])
    listing = other.get(URL).get_data(as_text=True)
    assert f"{glob.serie}-{glob.folio}" not in listing and "CENTRO" not in listing
    assert _preview(other, day).status_code == 404
    assert (
        other.post(
            URL, data={"branch": day["branch"], "periodicity": "01", "day": day["day"]}
        ).status_code
        == 404
    )
    assert other.get(f"{URL}/{glob.public_id}.xml").status_code == 404
    assert other.post(f"{URL}/{glob.public_id}/corregir").status_code == 404
    # Nor can demo reach the other issuer's branch.
    data = {"branch": staff["other_branch_id"], "periodicity": "01", "day": day["day"]}
    assert client.post(URL, data=data).status_code == 404
    assert len(_globals(app)) == 1


def test_correct_a_global_after_a_customer_invoices_one_of_its_tickets(
    app, client, staff, admin_login
):
    day = _closed_day(app)
    admin_login(client, staff["admin"])
    html = _preview(client, day).get_data(as_text=True)
    assert _stamp(client, day, html)[0].status_code == 303
    (glob,) = _globals(app)
    assert "Por corregir" not in client.get(URL).get_data(as_text=True)

    customer = app.test_client()
    key = start(customer, day["branch"])
    r = customer.post("/facturar/demo/ticket", data=ticket_data(day["last_data"], key))
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]

    listing = client.get(URL).get_data(as_text=True)
    assert "Por corregir" in listing and "Corregir" in listing
    # Others cannot correct it; the admin does, in one action.
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    assert other.post(f"{URL}/{glob.public_id}/corregir").status_code == 404
    response = client.post(f"{URL}/{glob.public_id}/corregir")
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    listing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "motivo 04" in listing and "Por corregir" not in listing

    old, new = _globals(app)
    assert old.cancel_motive == "04" and old.status is InvoiceStatus.CANCELLED
    assert new.status is InvoiceStatus.STAMPED and new.folio != old.folio
    assert new.total == day["total"] - day["last_data"]["total"]
    root = etree.fromstring(client.get(f"{URL}/{new.public_id}.xml").data)
    numbers = {c.get("NoIdentificacion") for c in root.iter(f"{CFDI}Concepto")}
    assert day["last_data"]["number"] not in numbers
    assert Decimal(root.get("Total")) == new.total
    with app.app_context():
        statuses = db.session.execute(
            select(func.count()).where(Invoice.is_global, Invoice.needs_correction)
        ).scalar()
        assert statuses == 0
        held = gi.held_tickets(db.session, db.session.get(Invoice, new.id))
        assert len(held) == day["count"] - 1
        assert {t.status for t in held} == {TicketStatus.IN_GLOBAL}
    # A second click does nothing more.
    assert client.post(f"{URL}/{old.public_id}/corregir").status_code == 422
    assert len(_globals(app)) == 2


def test_operator_acts_on_the_issuer_picked(app, client, staff, admin_login):
    admin_login(client, staff["operator"])
    assert client.get(URL).headers["Location"].endswith("/admin/emisores")
    client.post("/admin/emisores", data={"issuer": staff["issuer_id"]})
    day = _closed_day(app)
    html = _preview(client, day).get_data(as_text=True)
    assert f"<dd>{day['count']}</dd>" in html
    assert _stamp(client, day, html)[0].status_code == 303
    assert len(_globals(app)) == 1
