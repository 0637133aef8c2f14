"""Loose ends of Ecuador (#16): the step bar's second step, the kiosk's hand-off to a phone,
the pages' wording without CFDI/SAT, and the invoicing policy of an EC issuer's settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from webapp.admin.staff import create_staff
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.kiosk import devices, routes
from webapp.models import Branch, Invoice, Issuer, Kiosk, StaffRole, Ticket, TicketLine
from webapp.sri import catalogs

HTMX = {"HX-Request": "true"}
EC_ADMIN = "admin.andes@example.com"


@pytest.fixture
def shop(app, ec_shop) -> dict:
    """ec_shop, with two tickets whose numbers a customer can type (digits only)."""
    with app.app_context():
        branch = db.session.get(Branch, ec_shop["branch_id"])
        sold = datetime.now(UTC) - timedelta(hours=1)
        tickets = [
            Ticket(
                branch=branch,
                order_number=f"70{n}",
                ticket_number=f"12340{n}",
                sold_at=sold,
                total=Decimal("8.05"),  # 7.00 at 15 %
                currency="USD",
                forma_pago="19",
                lines=[
                    TicketLine(
                        position=1,
                        description="Café de Loja 250 g",
                        clave_prod_serv="01010101",
                        clave_unidad="H87",
                        quantity=Decimal("2"),
                        unit_price=Decimal("3.50"),
                        tax_factor="Tasa",
                        tax_rate=Decimal("0.150000"),
                    )
                ],
            )
            for n in (1, 2)
        ]
        db.session.add_all(tickets)
        db.session.commit()
        typable = [
            {"id": t.id, "order": t.order_number, "number": t.ticket_number, "total": t.total}
            for t in tickets
        ]
    return {**ec_shop, "tickets": typable}


def _steps(html: str) -> list[str]:
    """The labels of the step bar, in order."""
    bar = re.search(r'<ol class="progress"[^>]*>(.*?)</ol>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li.*?</li>", bar, re.S)]


def _identify(client, shop, **extra) -> str:
    """The RFC step of the EC shop with a cédula: the ticket step's page."""
    data = {"id_type": catalogs.CEDULA, "identificacion": shop["cedula"], **extra}
    r = client.post(f"/facturar/{shop['slug']}/rfc", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Datos del ticket" in html, html[:2000]
    return html


def _ticket_data(t, key, **extra) -> dict:
    return {
        "order_number": t["order"],
        "ticket_number": t["number"],
        "total": str(t["total"]),
        "key": key,
        "action": "generate",
        "nombre": "María José Andrade Villacís",
        "direccion": "Calle Los Pinos E5-12, Quito",
        "email": "maria@example.com",
        "forma_pago": "19",
        **extra,
    }


def _key(html: str) -> str:
    return re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)


# --- 1. The step bar ---------------------------------------------------------------------------


def test_the_second_step_is_the_identification_in_ecuador(client, ec_shop, demo):
    slug = ec_shop["slug"]
    assert _steps(client.get(f"/facturar/{slug}/").get_data(as_text=True)) == [
        "Sucursal",
        "Identificación",
        "Ticket",
        "Factura",
    ]
    client.post(f"/facturar/{slug}/", data={"branch": str(ec_shop["branch_id"])})
    assert _steps(client.get(f"/facturar/{slug}/rfc").get_data(as_text=True))[1] == (
        "Identificación"
    )
    assert _steps(_identify(client, ec_shop))[1] == "Identificación"
    mexico = client.get("/facturar/demo/").get_data(as_text=True)
    assert _steps(mexico) == ["Sucursal", "RFC", "Ticket", "Factura"]


# --- 2. Continuar en mi teléfono ------------------------------------------------------------


@pytest.fixture
def ec_kiosk(app, client, ec_shop):
    """`client` enrolled as a kiosk of the EC shop's branch."""
    result = app.test_cli_runner().invoke(
        args=["kiosk", "enrol", "--issuer", ec_shop["slug"], "--branch", "QUITO"]
    )
    assert result.exit_code == 0, result.output
    path = re.search(r"http://localhost(/kiosco/alta/\S+)", result.output).group(1)
    assert client.post(path).status_code == 303
    return client


@pytest.fixture
def links(monkeypatch):
    made = []
    monkeypatch.setattr(routes, "qr_data_uri", lambda url: made.append(url) or "data:,qr")
    return made


def test_the_phone_lands_on_the_ticket_step_with_the_identification(app, ec_kiosk, shop, links):
    client, slug, t = ec_kiosk, shop["slug"], shop["tickets"][0]
    # The kiosk has no branch step: its bar starts at the identification.
    assert _steps(client.get(f"/facturar/{slug}/rfc").get_data(as_text=True))[0] == (
        "Identificación"
    )
    key = _key(_identify(client, shop))
    typed = {"order_number": t["order"], "ticket_number": t["number"], "total": str(t["total"])}
    r = client.post("/kiosco/telefono", data={**typed, "key": key}, headers=HTMX)
    dialog = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="modal-title"' in dialog
    assert "su identificación" in dialog and "RFC" not in dialog

    phone = app.test_client()
    r = phone.get(links[-1])
    assert r.status_code == 303 and r.headers["Location"] == f"/facturar/{slug}/ticket"
    html = phone.get(f"/facturar/{slug}/ticket").get_data(as_text=True)
    assert "Datos del ticket" in html and shop["cedula"] in html and "Cédula" in html
    for name, value in typed.items():
        assert re.search(rf'id="{name}"[^>]*value="{value}"', html), name
    assert 'class="kiosk"' not in html

    r = phone.post(f"/facturar/{slug}/ticket", data=_ticket_data(t, _key(html)))
    assert r.status_code == 303, re.findall(r'role="alert">(.*?)<', r.get_data(as_text=True))
    assert "/facturar/factura/" in r.headers["Location"]
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert (invoice.receptor_rfc, invoice.receptor_id_type) == (shop["cedula"], "05")


def test_a_consumidor_final_travels_too(app, ec_kiosk, ec_shop, links):
    client, slug = ec_kiosk, ec_shop["slug"]
    _identify(client, ec_shop, id_type=catalogs.CONSUMIDOR_FINAL, identificacion="")
    client.post("/kiosco/telefono", data={})
    phone = app.test_client()
    assert phone.get(links[-1]).status_code == 303
    html = phone.get(f"/facturar/{slug}/ticket").get_data(as_text=True)
    assert "Datos del ticket" in html and catalogs.CONSUMIDOR_FINAL_ID in html


def test_the_hand_off_token_carries_the_tipo(app, ec_shop):
    secret = app.config["SECRET_KEY"]
    with app.app_context():
        kiosk = devices.create(db.session, db.session.get(Issuer, ec_shop["issuer_id"]).branches[0])
        handoff = devices.Handoff(kiosk.id, kiosk.branch_id, "1710000009", id_type="05")
        token = devices.handoff_token(secret, kiosk, handoff)
        db.session.commit()
        got = devices.redeem_handoff(db.session, secret, token, 60)
        assert (got.rfc, got.id_type) == ("1710000009", "05")
        # A Mexican hand-off has no tipo.
        kiosk = db.session.get(Kiosk, kiosk.id)
        token = devices.handoff_token(secret, kiosk, devices.Handoff(kiosk.id, 1, "XAXX"))
        assert devices.redeem_handoff(db.session, secret, token, 60).id_type == ""


# --- 3. No CFDI nor SAT on an Ecuadorian issuer's pages --------------------------------------


def test_ecuadorian_customer_pages_do_not_speak_of_cfdi_or_sat(app, client, shop):
    ec_shop = shop  # with typable tickets
    slug, t = ec_shop["slug"], ec_shop["tickets"][0]
    pages = [client.get(f"/facturar/{slug}/").get_data(as_text=True)]
    client.post(f"/facturar/{slug}/", data={"branch": str(ec_shop["branch_id"])})
    pages.append(client.get(f"/facturar/{slug}/rfc").get_data(as_text=True))
    html = _identify(client, ec_shop)
    pages.append(html)
    r = client.post(f"/facturar/{slug}/ticket", data=_ticket_data(t, _key(html)))
    assert r.status_code == 303
    pages.append(client.get(r.headers["Location"]).get_data(as_text=True))
    for page in pages:
        assert "CFDI" not in page and not re.search(r"\bSAT\b", page), page
        assert 'name="description" content="Convierta su ticket de compra en una factura' in page


# --- 4. The invoicing policy of an Ecuadorian issuer -------------------------------------------


@pytest.fixture
def ec_admin(app, client, ec_shop, admin_login):
    with app.app_context():
        issuer = db.session.get(Issuer, ec_shop["issuer_id"])
        create_staff(db.session, EC_ADMIN, StaffRole.ISSUER_ADMIN, issuer, password=STAFF_PASSWORD)
        db.session.commit()
    admin_login(client, EC_ADMIN)
    return client


def _policy(**changes) -> dict:
    data = {
        "window_kind": "days_after",
        "window_days": "20",
        "window_day": "3",
        "formas_pago": ["01", "19"],
        "guest_invoicing": "",
    }
    data.update(changes)
    return data


def _fresh(app, ec_shop) -> Issuer:
    with app.app_context():
        issuer = db.session.get(Issuer, ec_shop["issuer_id"])
        db.session.expunge(issuer)
        return issuer


def _section(html: str) -> str:
    return html[html.index('id="sec-facturacion"') : html.index("Guardar facturación")]


def test_the_page_offers_sri_formas_de_pago_and_no_serie_nor_global(ec_admin):
    billing = _section(ec_admin.get("/admin/emisor").get_data(as_text=True))
    for code, name in catalogs.FORMAS_PAGO.items():
        assert f"{code} · {name}" in billing
    assert re.search(r'<input checked[^>]*value="16"', billing)  # stored "01,16,19,20"
    assert "28 ·" not in billing and "Tarjeta de débito" in billing
    for absent in ('name="serie"', 'name="next_folio"', 'name="global_policy"', "global"):
        assert absent not in billing
    assert "establecimiento y punto de emisión" in billing
    assert 'name="window_kind"' in billing and 'name="guest_invoicing"' in billing


def test_the_policy_is_saved(app, ec_admin, ec_shop):
    before = _fresh(app, ec_shop)
    r = ec_admin.post("/admin/emisor/facturacion", data=_policy())
    assert r.status_code == 303, r.get_data(as_text=True)
    issuer = _fresh(app, ec_shop)
    assert issuer.formas_pago == "01,19" and issuer.window_policy == "days_after:20"
    assert issuer.guest_invoicing is False
    assert (issuer.serie, issuer.next_folio, issuer.global_policy) == (
        before.serie,
        before.next_folio,
        before.global_policy,
    )
    guest = app.test_client()
    r = guest.get(f"/facturar/{ec_shop['slug']}/")
    assert r.status_code in (302, 303) and "/cuenta/entrar" in r.headers["Location"]
    # Guests again: the ticket step offers the formas de pago chosen.
    assert (
        ec_admin.post("/admin/emisor/facturacion", data=_policy(guest_invoicing="y")).status_code
        == 303
    )
    guest.post(f"/facturar/{ec_shop['slug']}/", data={"branch": str(ec_shop["branch_id"])})
    html = _identify(guest, ec_shop)
    forma = re.search(r'<select[^>]*name="forma_pago".*?</select>', html, re.S).group(0)
    assert re.findall(r'value="(\d+)"', forma) == ["01", "19"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"formas_pago": []}, "formas_pago", "al menos una forma de pago"),
        ({"formas_pago": ["01", "28"]}, "formas_pago", "tabla del SRI"),
        ({"window_days": "400"}, "window_days", "de 0 a 366"),
        ({"window_kind": "whenever"}, "window_kind", "plazo"),
    ],
)
def test_bad_policy_refused(app, ec_admin, ec_shop, changes, field, message):
    r = ec_admin.post("/admin/emisor/facturacion", data=_policy(**changes))
    assert r.status_code == 422
    text = r.get_data(as_text=True)
    assert message in text and f'id="{field}-error"' in text
    assert _fresh(app, ec_shop).formas_pago == "01,16,19,20"


def test_mexican_billing_section_unchanged(client, staff, admin_login):
    admin_login(client, staff["admin"])
    billing = _section(client.get("/admin/emisor").get_data(as_text=True))
    for present in ('name="serie"', 'name="next_folio"', 'name="global_policy"', "28 ·"):
        assert present in billing
    assert "establecimiento" not in billing
