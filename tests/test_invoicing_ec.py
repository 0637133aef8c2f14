"""An Ecuadorian shop's ticket flow (SRI facturas): the buyer's identification by its tipo,
razón social, dirección and email, with the same inline checks as the Mexican flow."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select

from webapp import crypto
from webapp.extensions import db
from webapp.fiscal import ec_buyer
from webapp.fiscal.problems import Problem
from webapp.models import Branch, Invoice, Issuer, Ticket, TicketLine, TicketStatus
from webapp.sri import catalogs
from webapp.sri.keystore import store_p12
from webapp.sri.testp12 import make_test_p12

SLUG = "tienda-ec"
SHOP_RUC = "1790011674001"  # valid for stdnum.ec.ruc
CEDULA = "1710034065"  # valid for stdnum.ec.ci
BUYER_RUC = "1792060346001"
P12_PASSWORD = "clave-de-prueba"


def _ticket(branch: Branch, number: str, order: str, unit_price: str, now: datetime) -> Ticket:
    """A ticket of one line at IVA 15 %: its total is the price plus the IVA."""
    price = Decimal(unit_price)
    return Ticket(
        branch=branch,
        order_number=order,
        ticket_number=number,
        sold_at=now - timedelta(hours=2),
        total=(price * Decimal("1.15")).quantize(Decimal("0.01")),
        currency="USD",
        forma_pago="19",
        status=TicketStatus.OPEN,
        lines=[
            TicketLine(
                position=1,
                description="Cuaderno universitario 100 hojas",
                clave_prod_serv="CU-100",
                clave_unidad="H87",
                quantity=Decimal("1"),
                unit_price=price,
                objeto_imp="02",
                tax_factor="Tasa",
                tax_rate=Decimal("0.150000"),
            )
        ],
    )


@pytest.fixture
def shop(app):
    """An Ecuadorian retail issuer with its .p12, one establecimiento and three tickets: two
    under the consumidor final limit (US$ 11.50 and US$ 23.00) and one above (US$ 115.00)."""
    now = datetime.now(UTC)
    with app.app_context():
        issuer = Issuer(
            slug=SLUG,
            kind="retail",
            country="EC",
            rfc=SHOP_RUC,
            legal_name="PAPELERIA LA ECUATORIANA CIA. LTDA.",
            trade_name="Papelería La Ecuatoriana",
            head_office_address="Av. Amazonas N24-03 y Colón, Quito",
            regimen_fiscal="",
            cp="",
            formas_pago="01,16,19,20",
            window_policy="days_after:30",
        )
        branch = Branch(
            code="QUITO",
            name="Local Quito",
            cp="",
            address="Av. Amazonas N24-03 y Colón, Quito",
            active=True,
            estab="001",
            pto_emi="001",
        )
        issuer.branches = [branch]
        p12 = make_test_p12(SHOP_RUC, issuer.legal_name, P12_PASSWORD, now=now - timedelta(days=1))
        store_p12(issuer, p12, P12_PASSWORD, crypto.cipher_from_config(app.config))
        tickets = [
            _ticket(branch, "5001", "90001", "10.00", now),
            _ticket(branch, "5002", "90002", "20.00", now),
            _ticket(branch, "5003", "90003", "100.00", now),
        ]
        db.session.add(issuer)
        db.session.add_all(tickets)
        db.session.commit()
        return {
            "branch_id": branch.id,
            "tickets": [
                {"id": t.id, "number": t.ticket_number, "order": t.order_number, "total": t.total}
                for t in tickets
            ],
        }


def start(client, shop, id_type=catalogs.CEDULA, identificacion=CEDULA) -> str:
    """Branch and identification in one POST; the ticket form's idempotency key."""
    page = client.get(f"/facturar/{SLUG}/").get_data(as_text=True)
    assert "Tipo de identificación" in page
    r = client.post(
        f"/facturar/{SLUG}/",
        data={
            "branch": str(shop["branch_id"]),
            "id_type": id_type,
            "identificacion": identificacion,
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Datos del ticket" in html, html
    return re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)


def ticket_data(t, key, **extra) -> dict:
    data = {
        "order_number": t["order"],
        "ticket_number": t["number"],
        "total": str(t["total"]),
        "key": key,
        "action": "generate",
        "nombre": "María José Andrade Villacís",
        "direccion": "Calle Los Pinos E5-12, Quito",
        "email": "maria@example.com",
        "forma_pago": "19",
    }
    data.update(extra)
    return data


def _wrapper(html: str, field: str) -> str:
    found = re.search(rf'<div class="field[^"]*" id="campo-{field}".*?</div>', html, re.S)
    assert found, html
    return found.group(0)


# --- The buyer's checks, without Flask -------------------------------------------------------


@pytest.mark.run_once
@pytest.mark.parametrize(
    ("id_type", "typed", "problem"),
    [
        (catalogs.CEDULA, CEDULA, None),
        (catalogs.CEDULA, "171003406-5", None),
        (catalogs.CEDULA, "17l0O34065", None),  # look-alike letters read as digits
        (catalogs.CEDULA, "1710034066", Problem.CHECK_DIGIT),
        (catalogs.CEDULA, "12345", Problem.FORMAT),
        (catalogs.CEDULA, "", Problem.EMPTY),
        (catalogs.RUC, BUYER_RUC, None),
        (catalogs.RUC, "1792060346002", Problem.CHECK_DIGIT),
        (catalogs.RUC, "1792060346", Problem.FORMAT),
        (catalogs.PASAPORTE, "ab 12345", None),
        (catalogs.PASAPORTE, "A", Problem.FORMAT),
        (catalogs.EXTERIOR, "X-99", None),
        (catalogs.CONSUMIDOR_FINAL, "", None),
    ],
)
def test_identification_checks(id_type, typed, problem):
    assert ec_buyer.check_identificacion(id_type, typed) is problem


@pytest.mark.run_once
def test_buyer_checks_and_receptor():
    assert ec_buyer.check_buyer("", CEDULA, "X", "Y") == {"id_type": Problem.EMPTY}
    assert ec_buyer.check_buyer("99", CEDULA, "X", "Y") == {"id_type": Problem.UNKNOWN}
    assert ec_buyer.check_buyer(catalogs.CEDULA, CEDULA, " ", "") == {
        "nombre": Problem.EMPTY,
        "direccion": Problem.EMPTY,
    }
    over = catalogs.CONSUMIDOR_FINAL_LIMITE + Decimal("0.01")
    final = catalogs.CONSUMIDOR_FINAL
    assert ec_buyer.check_buyer(final, "", "", "", over) == {"total": Problem.GENERIC}
    assert ec_buyer.check_buyer(final, "", "", "", catalogs.CONSUMIDOR_FINAL_LIMITE) == {}
    assert ec_buyer.check_buyer(catalogs.CEDULA, CEDULA, "A", "B", Decimal("9999")) == {}
    receptor = ec_buyer.receptor(catalogs.CEDULA, "171003406-5", " maría  josé\n", " Quito ")
    assert (receptor.rfc, receptor.nombre, receptor.address) == (CEDULA, "MARÍA JOSÉ", "Quito")
    assert (receptor.id_type, receptor.cp, receptor.regimen, receptor.uso_cfdi) == (
        "05",
        "",
        "",
        "",
    )
    final_receptor = ec_buyer.receptor(final, "", "", "")
    assert (final_receptor.rfc, final_receptor.nombre) == ("9999999999999", "CONSUMIDOR FINAL")


# --- The web flow -----------------------------------------------------------------------------


def test_identification_step_asks_the_tipo_and_the_ticket_step_no_sat_data(client, shop):
    page = client.get(f"/facturar/{SLUG}/").get_data(as_text=True)
    assert "Sucursal e identificación" in page and "RFC" not in page
    for code, label in catalogs.TIPOS_IDENTIFICACION.items():
        assert f'<option value="{code}">{label}</option>' in page
    r = client.post(
        f"/facturar/{SLUG}/",
        data={"branch": str(shop["branch_id"]), "id_type": "05", "identificacion": " 171003406-5 "},
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Datos del ticket" in html
    assert f"Cédula <strong>{CEDULA}</strong>" in html and "Cambiar identificación" in html
    for label in ("Razón social / Nombres y apellidos", "Dirección", "Correo electrónico"):
        assert label in html
    for sat in ("Régimen fiscal", "Uso del CFDI", "Código postal", "Constancia de Situación"):
        assert sat not in html
    options = re.findall(r'<option (?:selected )?value="(\d\d)"', html)
    assert options == ["01", "16", "19", "20"]
    assert "19 · Tarjeta de crédito" in html
    assert "US$" in html


@pytest.mark.parametrize(
    ("id_type", "typed", "message"),
    [
        ("05", "1710034066", "La cédula no es válida"),
        ("05", "12345", "La cédula tiene 10 dígitos"),
        ("04", "1792060346002", "El RUC no es válido"),
        ("04", CEDULA, "El RUC tiene 13 dígitos"),
        ("06", "A", "pasaporte con letras y números"),
        ("", CEDULA, "Elija el tipo de identificación"),
    ],
)
def test_bad_identification_next_to_the_field(client, shop, id_type, typed, message):
    client.post(f"/facturar/{SLUG}/", data={"branch": str(shop["branch_id"])})
    r = client.post(f"/facturar/{SLUG}/rfc", data={"id_type": id_type, "identificacion": typed})
    assert r.status_code == 422
    field = "id_type" if not id_type else "identificacion"
    assert message in _wrapper(r.get_data(as_text=True), field)

    # The same check inline, as htmx asks for it when the customer leaves the field.
    inline = client.post(
        f"/facturar/{SLUG}/rfc",
        data={"id_type": id_type, "identificacion": typed},
        headers={"HX-Request": "true", "HX-Target": "campo-identificacion"},
    )
    body = inline.get_data(as_text=True)
    assert inline.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<div class="field')
    if id_type:
        assert body.lstrip().startswith('<div class="field invalid" id="campo-identificacion"')
        assert message in body


def test_a_new_tipo_refreshes_the_identification_inline(client, shop):
    # A cédula typed, then the tipo changed to RUC: the identification's verdict changes too.
    inline = client.post(
        f"/facturar/{SLUG}/rfc",
        data={"id_type": "04", "identificacion": CEDULA},
        headers={"HX-Request": "true", "HX-Target": "campo-id_type"},
    )
    body = inline.get_data(as_text=True).strip()
    assert body.startswith('<div class="field" id="campo-id_type"')
    oob = body[body.index('id="campo-identificacion"') - 30 :]
    assert 'hx-swap-oob="true"' in oob and "El RUC tiene 13 dígitos" in oob


def test_typos_in_the_cedula_are_normalised(app, client, shop):
    start(client, shop, identificacion="171-OO34-O65")
    html = client.get(f"/facturar/{SLUG}/ticket").get_data(as_text=True)
    assert f"<strong>{CEDULA}</strong>" in html


def test_missing_direccion_next_to_the_field(app, client, shop):
    t = shop["tickets"][0]
    key = start(client, shop)
    r = client.post(f"/facturar/{SLUG}/ticket", data=ticket_data(t, key, direccion="  "))
    assert r.status_code == 422
    assert "Escriba su dirección." in _wrapper(r.get_data(as_text=True), "direccion")
    inline = client.post(
        f"/facturar/{SLUG}/ticket/campo/nombre",
        data=ticket_data(t, key, nombre=""),
        headers={"HX-Request": "true"},
    )
    assert inline.status_code == 200
    body = inline.get_data(as_text=True).lstrip()
    assert body.startswith('<div class="field" id="campo-nombre"')  # nothing typed: no verdict
    inline = client.post(
        f"/facturar/{SLUG}/ticket/campo/direccion",
        data=ticket_data(t, key, direccion="x" * 301),
        headers={"HX-Request": "true"},
    )
    body = inline.get_data(as_text=True).lstrip()
    assert body.startswith('<div class="field invalid" id="campo-direccion"')
    assert "300 caracteres" in body
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_sat_fields_are_not_checked_inline(client, shop):
    key = start(client, shop)
    for name in ("cp", "regimen", "uso_cfdi"):
        r = client.post(
            f"/facturar/{SLUG}/ticket/campo/{name}",
            data=ticket_data(shop["tickets"][0], key),
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 404


def test_consumidor_final_above_the_limit_is_refused(app, client, shop):
    small, _, big = shop["tickets"]
    key = start(client, shop, id_type=catalogs.CONSUMIDOR_FINAL, identificacion="")
    html = client.get(f"/facturar/{SLUG}/ticket").get_data(as_text=True)
    assert "Venta a consumidor final <strong>9999999999999</strong>" in html
    assert "CONSUMIDOR FINAL" in html and 'id="campo-direccion"' not in html
    data = ticket_data(big, key, nombre="", direccion="")
    r = client.post(f"/facturar/{SLUG}/ticket", data=data)
    assert r.status_code == 422
    wrapper = _wrapper(r.get_data(as_text=True), "total")
    assert "más de US$ 50.00 no puede emitirse a consumidor final" in wrapper
    inline = client.post(
        f"/facturar/{SLUG}/ticket/campo/total", data=data, headers={"HX-Request": "true"}
    )
    assert "no puede emitirse a consumidor final" in inline.get_data(as_text=True)
    # Under the limit the total passes.
    inline = client.post(
        f"/facturar/{SLUG}/ticket/campo/total",
        data=ticket_data(small, key),
        headers={"HX-Request": "true"},
    )
    assert "field-error" not in inline.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Ticket, big["id"]).status is TicketStatus.OPEN


def test_consumidor_final_counts_the_tickets_added(client, shop):
    first, second, _ = shop["tickets"]  # 11.50 + 23.00: under the limit together
    key = start(client, shop, id_type=catalogs.CONSUMIDOR_FINAL, identificacion="")
    r = client.post(f"/facturar/{SLUG}/ticket", data=ticket_data(first, key, action="add"))
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "US$ 11.50" in html
    r = client.post(
        f"/facturar/{SLUG}/ticket/campo/total",
        data=ticket_data(second, key, total="40.00"),
        headers={"HX-Request": "true"},
    )
    assert "El total no coincide" in r.get_data(as_text=True)  # the ticket's own check first
    r = client.post(
        f"/facturar/{SLUG}/ticket/campo/total",
        data=ticket_data(second, key),
        headers={"HX-Request": "true"},
    )
    assert "field-error" not in r.get_data(as_text=True)


def test_mexican_flow_keeps_its_rfc_step(client, demo):
    html = client.get("/facturar/demo/").get_data(as_text=True)
    assert "Sucursal y RFC" in html and "Tipo de identificación" not in html


def test_ticket_to_authorised_factura_without_javascript(app, client, shop):
    """The whole road: a cédula, a ticket, the SRI factura authorised by the app's sandbox
    SRI and its downloads (needs the lead's EC stamping road)."""
    t = shop["tickets"][0]
    key = start(client, shop)
    r = client.post(f"/facturar/{SLUG}/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    html = page[page.index("<main") : page.index("</main>")]
    assert "autorizada por el SRI" in html and "CFDI" not in html and "UUID" not in html
    assert "US$ 11.50" in html and "001-001-000000001" in html
    xml_link = re.search(r'href="([^"]+\.xml)"', html).group(1)
    xml = client.get(xml_link)
    assert xml.status_code == 200
    root = etree.fromstring(xml.data)
    assert root.findtext(".//identificacionComprador") == CEDULA
    assert root.findtext(".//tipoIdentificacionComprador") == "05"
    assert root.findtext(".//razonSocialComprador") == "MARÍA JOSÉ ANDRADE VILLACÍS"
    assert root.findtext(".//direccionComprador") == "Calle Los Pinos E5-12, Quito"
    assert root.findtext(".//importeTotal") == "11.50"
    pdf = client.get(xml_link[:-4] + ".pdf")
    assert pdf.data.startswith(b"%PDF")
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert (invoice.receptor_rfc, invoice.receptor_id_type) == (CEDULA, "05")
        assert invoice.currency == "USD"
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
