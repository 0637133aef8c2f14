"""Onboarding a real merchant (#17): the operator creates the issuer and invites its admin;
the admin completes the checklist and publishes it; until then customers never see it
(ticket flow, start lists, kiosk, Mis servicios). `flask issuers create` does the same, and
`flask demo remove` takes the demo out without touching anyone else's data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.kiosk import devices
from webapp.models import (
    Branch,
    Issuer,
    MailMessage,
    StaffMember,
    StaffRole,
    Ticket,
    TicketStatus,
)
from webapp.platform import onboarding

NEW_RFC = "XIA190128J61"
PASSWORD = "una frase larga y segura"


def _page(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def operator(client, staff, admin_login):
    admin_login(client, staff["operator"])
    return client


def _form(**changes) -> dict:
    form = {
        "country": "MX",
        "kind": "retail",
        "rfc": NEW_RFC.lower(),
        "legal_name": "Xenon Industrial Articles",
        "regimen": "601",
        "cp": "64000",
        "slug": "xenon",
        "expires": "",
        "email": "Duena@Xenon.example.com",
        "name": "Dueña",
    }
    form.update(changes)
    return form


def _issuer(app, slug: str) -> Issuer | None:
    with app.app_context():
        found = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
        if found is not None:
            db.session.expunge(found)
        return found


def _invitation(app, to: str) -> str:
    with app.app_context():
        (mail,) = db.session.scalars(select(MailMessage).where(MailMessage.to_addrs == to))
        return re.search(r"http://localhost(/admin/clave/\S+)", mail.body_text).group(1)


def test_the_operator_creates_a_pending_metered_issuer_and_invites_its_admin(app, operator, staff):
    page = _page(operator.get("/operador/alta"))
    default = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    assert f'value="{default}"' in page  # a year's licence unless said otherwise
    response = operator.post("/operador/alta", data=_form(expires=default))
    assert response.status_code == 303, _page(response)[:2000]
    assert "Emisor creado" in _page(operator.get(response.headers["Location"]))
    issuer = _issuer(app, "xenon")
    assert issuer.rfc == NEW_RFC and issuer.legal_name == "XENON INDUSTRIAL ARTICLES"
    assert issuer.onboarding_pending is True and issuer.stamp_credits == 0
    assert issuer.licence_expires_at.date().isoformat() == default
    assert (issuer.kind, issuer.country, issuer.regimen_fiscal, issuer.cp) == (
        "retail",
        "MX",
        "601",
        "64000",
    )
    with app.app_context():
        admin = db.session.scalar(select(StaffMember).where(StaffMember.issuer_id == issuer.id))
        assert admin.email == "duena@xenon.example.com" and admin.password_hash is None
        assert admin.role is StaffRole.ISSUER_ADMIN
    link = _invitation(app, "duena@xenon.example.com")
    listed = _page(operator.get("/operador/"))
    assert "XENON INDUSTRIAL ARTICLES" in listed and "Pendiente" in listed

    # The invited admin chooses a password (single use) and lands on a dashboard that
    # links to the checklist.
    admin_browser = app.test_client()
    chosen = admin_browser.post(link, data={"password": PASSWORD, "password_confirm": PASSWORD})
    assert chosen.status_code == 303
    assert app.test_client().get(link).status_code == 410
    home = _page(admin_browser.get("/admin/"))
    assert 'href="/admin/alta"' in home and "Complete la lista de alta" in home


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"rfc": "XIA190128J62"}, "rfc", "dígito verificador"),
        ({"rfc": "ABC"}, "rfc", "12 caracteres"),
        ({"rfc": "EKU9003173C9"}, "rfc", "Ya hay un emisor con ese RFC o RUC."),
        ({"legal_name": ""}, "legal_name", "Escriba la razón social."),
        ({"legal_name": "XENON SA DE CV"}, "legal_name", "sin el régimen societario"),
        ({"regimen": "999"}, "regimen", "catálogo del SAT"),
        ({"regimen": "605"}, "regimen", "no corresponde al tipo de persona"),
        ({"cp": "1234"}, "cp", "5 dígitos"),
        ({"slug": "Mi Tienda"}, "slug", "Use sólo minúsculas"),
        ({"slug": "-x-"}, "slug", "Use sólo minúsculas"),
        ({"slug": "otro"}, "slug", "Esa dirección ya es de otro emisor."),
        ({"slug": ""}, "slug", "Escriba la dirección del portal"),
        ({"email": "no-es-correo"}, "email", None),
        ({"email": "admin.kemper@example.com"}, "email", "ya no se puede usar"),
        ({"expires": "2001-01-01"}, "expires", "después de hoy"),
        ({"country": "EC", "rfc": "1790000029001"}, "rfc", "El RUC no es válido"),
    ],
)
def test_a_refused_issuer_gets_a_message_by_its_field(app, operator, changes, field, message):
    response = operator.post("/operador/alta", data=_form(**changes))
    page = _page(response)
    assert response.status_code == 422
    assert f'id="{field}-error"' in page
    if message:
        assert message in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Issuer)) == 2  # demo, otro


def test_an_ecuadorian_services_issuer_with_its_billing_branch(app, operator):
    response = operator.post(
        "/operador/alta",
        data=_form(
            country="EC",
            kind="services",
            rfc="1790000028001",
            legal_name="Telecomunicaciones del Pichincha S.A.",
            regimen="",
            cp="",
            slug="pichincha",
            email="admin@pichincha.example.com",
        ),
    )
    assert response.status_code == 303, _page(response)[:2000]
    issuer = _issuer(app, "pichincha")
    assert (issuer.country, issuer.kind, issuer.rfc) == ("EC", "services", "1790000028001")
    assert issuer.legal_name == "Telecomunicaciones del Pichincha S.A."
    with app.app_context():
        items = {i.key: i.done for i in onboarding.checklist(db.session, issuer)}
    assert items == {"fiscal": False, "p12": False, "billing_branch": True, "policy": False}


def _pending(app, staff, kind="retail", slug="pendiente") -> dict:
    """A pending issuer with a branch, its admin (STAFF_PASSWORD) and a pending kiosk."""
    with app.app_context():
        new = onboarding.NewIssuer(
            tax_id="KIJ0906199R1" if kind == "retail" else "URE180429TM6",
            legal_name="KIJ PENDIENTE" if kind == "retail" else "URE PENDIENTE",
            slug=slug,
            regimen="601",
            cp="64000",
            kind=kind,
        )
        assert onboarding.check(db.session, new) == {}
        issuer = onboarding.create(db.session, new, datetime.now(UTC))
        if kind == "retail":
            issuer.branches.append(Branch(code="MATRIZ", name="Matriz", cp="64000", address=""))
        db.session.flush()
        from webapp.admin.staff import create_staff

        admin = create_staff(
            db.session,
            f"admin@{slug}.example.com",
            StaffRole.ISSUER_ADMIN,
            issuer,
            password=STAFF_PASSWORD,
        )
        kiosk = devices.create(db.session, issuer.branches[0], "Caja")
        db.session.commit()
        token = devices.enrol_token(app.config["SECRET_KEY"], kiosk)
        return {"id": issuer.id, "slug": slug, "admin": admin.email, "enrol": token}


def test_a_pending_issuer_is_not_offered_to_customers(app, client, staff):
    shop = _pending(app, staff, "retail", "tienda-nueva")
    provider = _pending(app, staff, "services", "tele-nueva")
    assert client.get("/facturar/tienda-nueva/").status_code == 404
    assert client.post("/facturar/tienda-nueva/rfc", data={"rfc": NEW_RFC}).status_code == 404
    start = _page(client.get("/facturar/"))  # the demo and "otro" only
    assert "/facturar/otro/" in start and "tienda-nueva" not in start
    home = _page(client.get("/"))
    assert "KIJ PENDIENTE" not in home and "tienda-nueva" not in home
    assert "URE PENDIENTE" not in home and "tele-nueva" not in home
    assert client.get("/servicios/tele-nueva/").status_code == 404
    assert client.get("/servicios/tele-nueva/registro").status_code == 404
    assert client.get(f"/kiosco/alta/{shop['enrol']}").status_code == 404

    with app.app_context():
        for issuer_id in (shop["id"], provider["id"]):
            db.session.get(Issuer, issuer_id).onboarding_pending = False
        db.session.commit()
    assert client.get("/facturar/tienda-nueva/").status_code == 200
    assert "/facturar/tienda-nueva/" in _page(client.get("/facturar/"))
    home = _page(client.get("/"))
    assert "KIJ PENDIENTE" in home and "URE PENDIENTE" in home
    assert client.get("/servicios/tele-nueva/").status_code in (200, 303)
    assert client.get(f"/kiosco/alta/{shop['enrol']}").status_code == 200


def test_the_admin_completes_the_checklist_and_publishes(app, client, staff, admin_login):
    pending = _pending(app, staff, "retail", "tienda-nueva")
    with app.app_context():  # no branch yet: the checklist asks for it
        db.session.execute(
            Branch.__table__.update().where(Branch.issuer_id == pending["id"]).values(active=False)
        )
        db.session.commit()
    admin_login(client, pending["admin"])
    page = _page(client.get("/admin/alta"))
    assert 'href="/admin/alta"' in page  # in the menu while pending
    for label in (
        "Datos fiscales",
        "Certificado de sello digital (CSD)",
        "Proveedor de timbrado (PAC) y sus credenciales",
        "Primera sucursal",
        "Política de facturación revisada",
    ):
        assert label in page
    assert page.count("✔ Listo") == 2  # fiscal data (typed by the operator), the PAC
    assert 'href="/admin/emisor/csd"' in page and 'href="/admin/sucursales"' in page
    refused = client.post("/admin/alta/publicar")
    assert refused.status_code == 422 and "Complete cada paso" in _page(refused)
    assert _issuer(app, "tienda-nueva").onboarding_pending is True

    confirmed = client.post("/admin/alta/politica")
    assert confirmed.status_code == 303
    page = _page(client.get(confirmed.headers["Location"]))
    assert "Política de facturación confirmada." in page
    assert "Confirmar política de facturación" not in page and page.count("✔ Listo") == 3
    with app.app_context():  # the CSD (the demo's) and a branch, as the settings pages do
        issuer = db.session.get(Issuer, pending["id"])
        demo = db.session.get(Issuer, staff["issuer_id"])
        issuer.csd_certificate, issuer.csd_key_encrypted = (
            demo.csd_certificate,
            demo.csd_key_encrypted,
        )
        issuer.csd_password_encrypted = demo.csd_password_encrypted
        issuer.branches[0].active = True
        db.session.commit()
    published = client.post("/admin/alta/publicar")
    assert published.status_code == 303
    page = _page(client.get(published.headers["Location"]))
    assert "Sus clientes ya pueden facturar con usted" in page
    assert _issuer(app, "tienda-nueva").onboarding_pending is False
    assert 'href="/admin/alta"' not in _page(client.get("/admin/facturas"))  # off the menu
    assert app.test_client().get("/facturar/tienda-nueva/").status_code == 200


def test_the_checklist_is_the_issuer_admins(app, client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get("/admin/alta").status_code == 403
    assert client.post("/admin/alta/publicar").status_code == 403


def test_flask_issuers_create(app, staff):
    runner = app.test_cli_runner()
    args = ["issuers", "create", "--rfc", NEW_RFC, "--name", "XENON INDUSTRIAL ARTICLES"]
    args += ["--regimen", "601", "--cp", "64000", "--slug", "xenon"]
    result = runner.invoke(args=[*args, "--admin-email", "duena@xenon.example.com"])
    assert result.exit_code == 0, result.output
    assert "Created issuer 'xenon'" in result.output
    assert "Invitation email queued for duena@xenon.example.com" in result.output
    issuer = _issuer(app, "xenon")
    assert issuer.onboarding_pending and issuer.stamp_credits == 0
    assert issuer.licence_expires_at is not None
    assert _invitation(app, "duena@xenon.example.com").startswith("/admin/clave/")

    again = runner.invoke(args=[*args, "--admin-email", "otra@xenon.example.com"])
    assert again.exit_code == 2
    assert "--rfc is already taken" in again.output and "--slug is already taken" in again.output

    shown = app.test_cli_runner()
    app.config["DEV_MAILBOX"] = True
    try:
        made = shown.invoke(
            args=[
                "issuers",
                "create",
                "--country",
                "EC",
                "--rfc",
                "1790000036001",
                "--name",
                "Quiteña S.A.",
                "--slug",
                "quitena",
                "--admin-email",
                "admin@quitena.example.com",
            ]
        )
    finally:
        app.config["DEV_MAILBOX"] = False
    assert made.exit_code == 0, made.output
    assert re.search(r"Invitation link .*: /admin/clave/\S+", made.output)


def _other_ticket(app, staff) -> int:
    with app.app_context():
        ticket = Ticket(
            branch_id=staff["other_branch_id"],
            order_number="K-1",
            ticket_number="1",
            sold_at=datetime.now(UTC),
            total=Decimal("116.00"),
            status=TicketStatus.OPEN,
        )
        db.session.add(ticket)
        db.session.commit()
        return ticket.id


def test_flask_demo_remove_takes_only_the_demo(app, staff, telecom, admin_login):
    ticket_id = _other_ticket(app, staff)
    runner = app.test_cli_runner()
    kept = runner.invoke(args=["demo", "remove"], input="n\n")
    assert kept.exit_code == 0 and "Nothing removed." in kept.output
    assert "demo, telcel-demo" in kept.output and "operador@example.com" in kept.output
    assert _issuer(app, "demo") is not None

    result = runner.invoke(args=["demo", "remove", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Removed the demo" in result.output
    with app.app_context():
        slugs = set(db.session.scalars(select(Issuer.slug)))
        assert slugs == {"otro"}
        emails = set(db.session.scalars(select(StaffMember.email)))
        assert emails == {staff["other_admin"]}
        assert db.session.get(Ticket, ticket_id) is not None
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
        branches = db.session.scalars(select(Branch.code)).all()
        assert branches == ["NORTE"]
    # The demo's staff cannot sign in; the other issuer's admin still can.
    browser = app.test_client()
    refused = browser.post(
        "/admin/entrar", data={"email": staff["admin"], "password": STAFF_PASSWORD}
    )
    assert refused.status_code != 303
    admin_login(app.test_client(), staff["other_admin"])

    again = runner.invoke(args=["demo", "remove", "--yes"])
    assert again.exit_code == 0 and "nothing to remove" in again.output
