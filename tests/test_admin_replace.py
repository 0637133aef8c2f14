"""«Sustituir factura» in the back office: an issuer admin corrects an invoice's receptor
data; the replacement is stamped naming the original, and the original is cancelled with
motive 01 in the same action."""

from __future__ import annotations

import re

import pytest
from lxml import etree
from sqlalchemy import select

from tests.flows import LARGE, SMALL, field, load, make_invoice
from webapp.extensions import db
from webapp.issuing import replace
from webapp.models import CancelStatus, Invoice, InvoiceStatus, MailMessage

CFDI = {"cfdi": "http://www.sat.gob.mx/cfd/4"}
GOOD = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G01",
    "forma_pago": "01",
    "email": "conta@example.com",
    "confirm": "y",
    "key": "replace-test-key-1",
}


def replaced_by(app, public_id: str) -> Invoice | None:
    with app.app_context():
        return replace.replacement_of(db.session, load(public_id))


def test_replacing_an_invoice_from_its_page(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, SMALL)
    admin_login(client, staff["admin"])
    detail = client.get(f"/admin/facturas/{public_id}").get_data(as_text=True)
    assert f'href="/admin/facturas/{public_id}/sustituir"' in detail
    page = client.get(f"/admin/facturas/{public_id}/sustituir").get_data(as_text=True)
    assert 'value="XOJI740919U48"' not in page  # the RFC is shown, not editable
    assert "XOJI740919U48" in page and 'name="nombre"' in page
    r = client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD)
    assert r.status_code == 303
    new_url = r.headers["Location"]
    assert "aviso=sustituye_cancelada" in new_url
    new = client.get(new_url).get_data(as_text=True)
    assert "Emitimos esta factura en sustitución de la anterior" in new
    assert f'href="/admin/facturas/{public_id}"' in new  # "Sustituye a la factura …"
    with app.app_context():
        original = load(public_id)
        replacement = db.session.scalar(select(Invoice).where(Invoice.replaces_id == original.id))
        assert original.status is InvoiceStatus.CANCELLED and original.cancel_motive == "01"
        assert original.cancel_replacement_uuid == replacement.uuid
        root = etree.fromstring(replacement.xml)
        relation = root.find("cfdi:CfdiRelacionados", CFDI)
        assert relation.get("TipoRelacion") == "04"
        assert relation.find("cfdi:CfdiRelacionado", CFDI).get("UUID") == original.uuid
        assert root.find("cfdi:Receptor", CFDI).get("UsoCFDI") == "G01"
        # The corrected invoice goes to the address typed, with its files.
        mail = db.session.scalar(
            select(MailMessage).where(MailMessage.to_addrs == "conta@example.com")
        )
        assert mail is not None and replacement.uuid in mail.body_text
    old = client.get(f"/admin/facturas/{public_id}").get_data(as_text=True)
    assert "La sustituye la factura" in old and f"{public_id}/sustituir" not in old


def test_a_large_invoice_waits_for_the_receptor(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, LARGE)
    admin_login(client, staff["admin"])
    r = client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD)
    assert r.status_code == 303 and "aviso=sustituye_en_proceso" in r.headers["Location"]
    with app.app_context():
        assert load(public_id).cancel_status is CancelStatus.PENDING
    new = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "al cancelarse la anterior" in new  # its ticket passes when the original goes


@pytest.mark.parametrize(
    ("change", "name", "message"),
    [
        ({"cp": "00000"}, "cp", "no está en el catálogo"),
        ({"regimen": "601"}, "regimen", ""),
        ({"uso_cfdi": "CN01"}, "uso_cfdi", ""),
        ({"email": "no-es-correo"}, "email", "correo electrónico válido"),
        ({"confirm": ""}, "confirm", "Marque la casilla"),
    ],
)
def test_bad_data_is_refused_next_to_the_field(
    app, client, staff, admin_login, demo, change, name, message
):
    public_id = make_invoice(app, SMALL)
    admin_login(client, staff["admin"])
    r = client.post(f"/admin/facturas/{public_id}/sustituir", data={**GOOD, **change})
    assert r.status_code == 422
    assert message in field(r.get_data(as_text=True), name) != ""
    assert replaced_by(app, public_id) is None
    with app.app_context():
        assert load(public_id).status is InvoiceStatus.STAMPED


def test_the_uso_list_follows_the_regimen(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, SMALL)
    admin_login(client, staff["admin"])
    r = client.get(
        f"/admin/facturas/{public_id}/sustituir?regimen=616&uso_cfdi=G03",
        headers={"HX-Request": "true"},
    )
    fragment = r.get_data(as_text=True)
    assert "<html" not in fragment and 'id="campo-uso_cfdi"' in fragment
    assert sorted(re.findall(r'<option value="(\w+)"', fragment)) == ["CP01", "G02", "S01"]


def test_submitting_twice_replaces_once(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, LARGE)
    admin_login(client, staff["admin"])
    first = client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD)
    again = client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD)
    assert first.status_code == 303
    assert again.status_code == 409  # the cancellation is pending now: nothing more to do
    assert "cancelación en proceso" in again.get_data(as_text=True)
    with app.app_context():
        original = load(public_id)
        count = len(
            db.session.scalars(select(Invoice).where(Invoice.replaces_id == original.id)).all()
        )
    assert count == 1


def test_who_may_replace(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, SMALL)
    admin_login(client, staff["branch"])
    assert client.get(f"/admin/facturas/{public_id}/sustituir").status_code == 403
    assert client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD).status_code == 403
    assert f"{public_id}/sustituir" not in client.get(f"/admin/facturas/{public_id}").get_data(
        as_text=True
    )
    client.post("/admin/salir")
    admin_login(client, staff["other_admin"])
    assert client.get(f"/admin/facturas/{public_id}/sustituir").status_code == 404
    assert client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD).status_code == 404
    assert replaced_by(app, public_id) is None


def test_a_global_invoice_is_not_replaced(app, client, staff, admin_login, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        load(public_id).is_global = True
        db.session.commit()
    admin_login(client, staff["admin"])
    assert f"{public_id}/sustituir" not in client.get(f"/admin/facturas/{public_id}").get_data(
        as_text=True
    )
    r = client.post(f"/admin/facturas/{public_id}/sustituir", data=GOOD)
    assert r.status_code == 409 and "Corregir" in r.get_data(as_text=True)
