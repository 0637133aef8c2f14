"""The back office's dashboard: what was stamped, what is open, what failed, the PAC."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.flows import stamp
from webapp.extensions import db
from webapp.models import Branch, Invoice, InvoiceStatus


def figure(html: str, label: str) -> int:
    match = re.search(rf"<dt>{label}</dt><dd>(\d+)</dd>", html)
    assert match, label
    return int(match.group(1))


def test_dashboard_counts_what_happened(app, client, demo, staff, admin_login):
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    before = admin.get("/admin/").get_data(as_text=True)
    assert figure(before, "Timbradas hoy") == 0
    open_before = figure(before, "Tickets sin facturar")

    stamp(client, demo["fresh"][0])
    stamp(client, demo["fresh"][1])
    with app.app_context():  # a failure on another branch
        other = db.session.scalar(select(Branch).where(Branch.code != "CENTRO"))
        invoice = db.session.scalar(select(Invoice))
        failed = Invoice(
            issuer_id=invoice.issuer_id,
            branch_id=other.id,
            status=InvoiceStatus.FAILED,
            serie="A",
            folio=999,
            fecha=invoice.fecha,
            receptor_rfc=invoice.receptor_rfc,
            receptor_nombre=invoice.receptor_nombre,
            receptor_cp=invoice.receptor_cp,
            receptor_regimen=invoice.receptor_regimen,
            uso_cfdi=invoice.uso_cfdi,
            forma_pago=invoice.forma_pago,
            subtotal=invoice.subtotal,
            taxes=invoice.taxes,
            total=invoice.total,
            error="301: XML inválido",
        )
        db.session.add(failed)
        db.session.commit()

    after = admin.get("/admin/").get_data(as_text=True)
    assert figure(after, "Timbradas hoy") == 2
    assert figure(after, "Timbradas este mes") == 2
    assert figure(after, "Timbres usados") == 2
    assert figure(after, "Tickets sin facturar") == open_before - 2
    assert figure(after, "Fallas de timbrado") == 1
    assert "301: XML inválido" in after
    assert 'sandbox: <span class="ok">disponible</span>' in after

    # Branch staff of CENTRO see their branch only: the failure was elsewhere.
    branch = app.test_client()
    admin_login(branch, staff["branch"])
    mine = branch.get("/admin/").get_data(as_text=True)
    assert figure(mine, "Timbradas hoy") == 2
    assert figure(mine, "Fallas de timbrado") == 0

    # Another issuer's admin sees none of it.
    other_admin = app.test_client()
    admin_login(other_admin, staff["other_admin"])
    theirs = other_admin.get("/admin/").get_data(as_text=True)
    assert figure(theirs, "Timbradas hoy") == 0 and figure(theirs, "Fallas de timbrado") == 0
