"""Aviso de privacidad (issue #17, seed 003 PASO 2): issuer staff accept the platform's current
notice before anything of the back office opens; each acceptance is kept (who, version, when,
from where); a new version is asked again; the operator is exempt. Each issuer's own notice
for its customers is public and linked from its pages and registration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import PrivacyAcceptance, PrivacyNotice, StaffMember
from webapp.platform import privacy

GATE = "/admin/aviso-de-privacidad"


def publish(app, body="Aviso de la plataforma.", issuer_id=None) -> int:
    with app.app_context():
        notice = privacy.publish(db.session, issuer_id, body, datetime.now(UTC))
        db.session.commit()
        return notice.id


@pytest.fixture
def notice(app, staff):
    return publish(app, "Primer párrafo del aviso.\n\nSegundo párrafo.")


def admin_pages(app) -> list[str]:
    """Every GET page of the back office without arguments, but the gate's own and
    sign-in's (open without a session)."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.arguments or "GET" not in rule.methods:
            continue
        if rule.endpoint in {
            "admin.sign_in",
            "admin.recover",
            "admin.privacy_gate",
            "admin.privacy_text",
        }:
            continue
        out.append(rule.rule)
    return out


def test_the_gate_blocks_every_back_office_page_until_accepted(
    app, client, staff, notice, admin_login
):
    response = admin_login(client, staff["admin"])
    assert response.headers["Location"].endswith("/admin/")
    pages = admin_pages(app)
    assert "/admin/" in pages and "/admin/facturas" in pages and "/admin/renovar" in pages
    for path in pages:
        response = client.get(path)
        assert response.status_code == 303, path
        assert GATE in response.headers["Location"], path
    # htmx is sent to the gate as a whole page; a POST does not get through either
    response = client.get("/admin/facturas", headers={"HX-Request": "true"})
    assert response.status_code == 204 and GATE in response.headers["HX-Redirect"]
    response = client.post("/admin/renovar/despues")
    assert response.status_code == 303 and GATE in response.headers["Location"]

    page = client.get(f"{GATE}?next=/admin/facturas").get_data(as_text=True)
    assert "Aviso de privacidad" in page
    assert "Ponemos a su disposición el aviso de privacidad para que conozca los términos." in page
    assert "Leer aviso de privacidad" in page
    assert "He leído y estoy de acuerdo con el Aviso de Privacidad de Datos" in page
    assert "Facturas</a>" not in page  # the menu is not offered
    text = client.get(f"{GATE}/texto").get_data(as_text=True)
    assert "Primer párrafo del aviso." in text and "Segundo párrafo." in text

    # Not ticked: 422 and the message by the check
    response = client.post(f"{GATE}?next=/admin/facturas", data={})
    assert response.status_code == 422
    assert "Marque la casilla para aceptar el aviso de privacidad." in response.get_data(
        as_text=True
    )
    before = datetime.now(UTC)
    response = client.post(f"{GATE}?next=/admin/facturas", data={"accept": "y"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/facturas")
    assert client.get("/admin/facturas").status_code == 200
    assert client.get("/admin/").status_code == 200

    with app.app_context():
        rows = db.session.scalars(select(PrivacyAcceptance)).all()
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == staff["admin"]))
        assert len(rows) == 1
        row = rows[0]
        assert row.staff_id == member.id and row.notice_id == notice
        assert row.ip == "127.0.0.1"
        assert before.replace(microsecond=0) <= row.accepted_at.replace(tzinfo=UTC)
        assert db.session.get(PrivacyNotice, notice).version == "1"


def test_a_new_version_is_asked_again_and_each_acceptance_is_kept(
    app, client, staff, notice, admin_login
):
    admin_login(client, staff["admin"])
    client.post(GATE, data={"accept": "y"})
    assert client.get("/admin/").status_code == 200
    second = publish(app, "Aviso, versión corregida.")
    response = client.get("/admin/")
    assert response.status_code == 303 and GATE in response.headers["Location"]
    page = client.get(GATE).get_data(as_text=True)
    assert "versión 2" in page
    client.post(GATE, data={"accept": "y"})
    assert client.get("/admin/").status_code == 200
    with app.app_context():
        accepted = db.session.scalars(
            select(PrivacyAcceptance.notice_id).order_by(PrivacyAcceptance.id)
        ).all()
        assert accepted == [notice, second]


def test_branch_staff_are_asked_the_operator_is_not(app, client, staff, notice, admin_login):
    admin_login(client, staff["branch"])
    response = client.get("/admin/facturas")
    assert response.status_code == 303 and GATE in response.headers["Location"]
    client.post("/admin/salir")

    admin_login(client, staff["operator"])
    assert client.get("/admin/emisores").status_code == 200
    assert client.get(GATE).status_code == 303  # nothing to accept: back to the back office
    with app.app_context():
        assert db.session.scalars(select(PrivacyAcceptance)).all() == []


def test_signing_out_works_before_accepting(client, staff, notice, admin_login):
    admin_login(client, staff["admin"])
    response = client.post("/admin/salir")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/entrar")
    assert client.get("/admin/").headers["Location"].startswith("/admin/entrar")


def test_without_a_platform_notice_there_is_no_gate(app, client, staff, admin_login):
    publish(app, "Aviso del emisor para sus clientes.", issuer_id=staff["issuer_id"])
    admin_login(client, staff["admin"])
    assert client.get("/admin/").status_code == 200


def test_an_issuer_publishes_its_own_notice_for_its_customers(
    app, client, staff, notice, admin_login
):
    assert "ARCO" in client.get("/aviso-de-privacidad/demo").get_data(as_text=True)
    admin_login(client, staff["admin"])
    client.post(GATE, data={"accept": "y"})
    page = client.get("/admin/emisor/aviso-de-privacidad")
    assert page.status_code == 200
    response = client.post("/admin/emisor/aviso-de-privacidad", data={"body": "  "})
    assert response.status_code == 422
    assert "Escriba el texto del aviso de privacidad." in response.get_data(as_text=True)
    for body in ("Tratamos sus datos para facturar.", "Versión dos del aviso."):
        response = client.post("/admin/emisor/aviso-de-privacidad", data={"body": body})
        assert response.status_code == 303
    public = client.get("/aviso-de-privacidad/demo").get_data(as_text=True)
    assert "Versión dos del aviso." in public and "Versión 2" in public
    # another issuer's notice is its own; an unknown slug is 404
    assert "Versión dos" not in client.get("/aviso-de-privacidad/otro").get_data(as_text=True)
    assert client.get("/aviso-de-privacidad/nadie").status_code == 404
    # linked in the footer of the issuer's customer pages, and at registration
    branch_step = client.get("/facturar/demo/").get_data(as_text=True)
    assert 'href="/aviso-de-privacidad/demo"' in branch_step
    assert 'href="/aviso-de-privacidad"' in client.get("/cuenta/registro").get_data(as_text=True)
    assert "Aviso de la plataforma" not in public
    with app.app_context():
        versions = db.session.scalars(
            select(PrivacyNotice.version)
            .where(PrivacyNotice.issuer_id == staff["issuer_id"])
            .order_by(PrivacyNotice.id)
        ).all()
        assert versions == ["1", "2"]
