"""The merchant's own account with the platform in a real Chromium, as a newcomer tries it
(#17 "done when"), with the mail workers running beside the server as under `make run`:

1. The operator onboards a new merchant from /operador/alta; its admin reads the invitation
   at /dev/mail, chooses a password, accepts the privacy notice, completes the checklist at
   /admin/alta (CSD, first branch, policy) and publishes; the operator gives it stamps; a
   ticket comes in by the back office's CSV import and a customer invoices it.
2. The demo merchant's admin signs in, accepts the privacy notice, gets the renewal quote
   (licence in 10 days), generates the slip (its reference's Luhn digit valid, IVA and total
   right), uploads a proof; the operator confirms the payment; the admin sees the new credits,
   the new expiry and the message of PASO 8 once, and the platform's CFDI is in the mail.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email import policy
from email.parser import BytesParser
from urllib.parse import urlsplit

import pytest
from lxml import etree
from playwright.sync_api import expect
from sqlalchemy import select
from stdnum import luhn

from tests.flows import fill_ticket, wait_until
from webapp import crypto
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.testcsd import make_test_csd
from webapp.cfdi.xsd import validate
from webapp.demo.platform import PLATFORM_NAME, PLATFORM_RFC, load_platform_demo
from webapp.demo.staff import ADMIN_EMAIL, OPERATOR_EMAIL, STAFF_PASSWORD, ensure_demo_staff
from webapp.extensions import db
from webapp.mail.transport import mail_directory
from webapp.models import Issuer
from webapp.platform.confirm import add_months
from webapp.tickets.csvfile import COLUMNS

pytestmark = pytest.mark.browser

NEW_RFC = "XIA190128J61"  # one of SAT's test RFCs, not the demo's
NEW_NAME = "XENON INDUSTRIAL ARTICLES"
NEW_SLUG = "xenon"
NEW_ADMIN = "duena@xenon.example.com"
NEW_PASSWORD = "una frase larga y segura"
CSD_PASSWORD = "clave-del-csd"
WELCOME_STAMPS = 10
CFDI = "{http://www.sat.gob.mx/cfd/4}"


@pytest.fixture
def app(make_app):
    return make_app(DEV_MAILBOX=True)


@pytest.fixture
def platform(app, demo):
    """The demo merchant, its staff and the operator's demo (catalog, bank details, its own
    issuer, privacy notice; the merchant's licence expiring in 10 days, 419 credits)."""
    with app.app_context():
        merchant = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        ensure_demo_staff(db.session, merchant)
        load_platform_demo(db.session, crypto.cipher_from_config(app.config), merchant)
        return {
            "name": merchant.legal_name,
            "rfc": merchant.rfc,
            "credits": merchant.stamp_credits,
            "expires": merchant.licence_expires_at,
        }


def _png() -> bytes:
    """A real 1×1 white PNG (the proof of payment)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _ticket_csv(number: str) -> bytes:
    """One ticket of the new merchant's branch: two colas at 16 % (31.04 + 4.97 = 36.01)."""
    sold = (datetime.now(MEXICO_CITY) - timedelta(hours=1)).replace(microsecond=0)
    values = {
        "branch": "MATRIZ",
        "ticket_number": number,
        "order_number": "700001",
        "sold_at": sold.isoformat(),
        "total": "36.01",
        "currency": "MXN",
        "forma_pago": "01",
        "description": "REFRESCO DE COLA 600 ML",
        "clave_prod_serv": "50202306",
        "clave_unidad": "H87",
        "quantity": "2",
        "unit_price": "15.52",
        "objeto_imp": "02",
        "tax_factor": "Tasa",
        "tax_rate": "0.160000",
    }
    return (",".join(COLUMNS) + "\n" + ",".join(values[c] for c in COLUMNS) + "\n").encode()


def _money(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.]", "", text))


def _sign_in(page, base: str, email: str, password: str = STAFF_PASSWORD) -> None:
    page.goto(base + "/admin/entrar")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("button", name=f"Salir ({email})")).to_be_visible()


def _sign_out(page, email: str) -> None:
    page.get_by_role("button", name=f"Salir ({email})").click()
    expect(page.get_by_role("heading", name="Entrar al panel del comercio")).to_be_visible()


def _accept_privacy_notice(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Aviso de privacidad")
    expect(page.get_by_role("link", name="Leer aviso de privacidad")).to_be_visible()
    page.get_by_label("He leído y estoy de acuerdo con el Aviso de Privacidad de Datos").check()
    page.get_by_role("button", name="Aceptar").click()


def _mail_link(page, base: str, to: str, subject) -> str:
    """The address of the message to `to` whose subject matches, once the worker wrote it
    (reloading /dev/mail as a person would)."""
    link = page.get_by_role("row").filter(has_text=to).get_by_role("link", name=subject)

    def arrived() -> bool:
        page.goto(base + "/dev/mail")
        return link.count() > 0

    wait_until(arrived, f"the email {subject!r} to {to} at /dev/mail")
    return link.first.get_attribute("href")


def _menu(page):
    return page.get_by_role("navigation", name="Menú del comercio")


def _onboard_a_new_merchant(app, page, browser, base: str, tmp_path, platform) -> None:
    # The operator: /operador/alta, then stamps for the new merchant, and a stamp package in
    # the demo merchant's renewal (its quote then lists it).
    _sign_in(page, base, OPERATOR_EMAIL)
    page.goto(base + "/operador/")
    page.get_by_role("navigation", name="Menú del operador").get_by_role(
        "link", name="Alta de emisor"
    ).click()
    page.get_by_label("País").select_option("MX")
    page.get_by_label("Tipo de emisor").select_option("retail")
    page.get_by_label("RFC (México) o RUC (Ecuador)").fill(NEW_RFC.lower())
    page.get_by_label("Razón social").fill("Xenon Industrial Articles")
    page.get_by_label("Régimen fiscal (México)").select_option("601")
    page.get_by_label("Código postal del domicilio fiscal (México)").fill("64000")
    page.get_by_label("Dirección del portal").fill(NEW_SLUG)
    page.get_by_label("Correo de su administrador").fill(NEW_ADMIN)
    page.get_by_label("Nombre de su administrador").fill("Dueña")
    page.get_by_role("button", name="Crear emisor e invitar").click()
    expect(page.get_by_text("Emisor creado. Enviamos la invitación")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(NEW_NAME)

    page.get_by_label("Timbres (positivo suma, negativo resta)").fill(str(WELCOME_STAMPS))
    page.get_by_label("Motivo", exact=True).fill("Timbres de bienvenida")
    page.get_by_role("button", name="Registrar ajuste").click()
    expect(page.get_by_text("Ajuste de timbres registrado.")).to_be_visible()

    _sign_out(page, OPERATOR_EMAIL)

    # The new admin: the invitation at /dev/mail, a password, the privacy notice.
    invitation = _mail_link(page, base, NEW_ADMIN, "Elija su contraseña del panel del comercio")
    page.goto(base + invitation)
    link = page.locator('a[href*="/admin/clave/"]').first.get_attribute("href")
    page.goto(base + urlsplit(link).path)  # the link names BASE_URL; this server is elsewhere
    page.get_by_label("Contraseña", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmar contraseña").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Guardar y entrar").click()
    _accept_privacy_notice(page)
    expect(page.get_by_text(f"Timbres disponibles: {WELCOME_STAMPS}")).to_be_visible()
    page.get_by_role("link", name="Complete la lista de alta y publíquelo").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alta del emisor")
    publish = page.get_by_role("button", name="Publicar")
    expect(publish).to_be_disabled()

    # The CSD, as the SAT's Certifica gives it: a .cer and a .key with its password.
    cer, key = make_test_csd(NEW_RFC, NEW_NAME, CSD_PASSWORD)
    (tmp_path / "csd.cer").write_bytes(cer)
    (tmp_path / "csd.key").write_bytes(key)
    page.get_by_role("link", name="Certificado de sello digital (CSD)").click()
    page.get_by_label("Certificado (.cer)").set_input_files(tmp_path / "csd.cer")
    page.get_by_label("Llave privada (.key)").set_input_files(tmp_path / "csd.key")
    page.get_by_label("Contraseña de la llave privada").fill(CSD_PASSWORD)
    page.get_by_role("button", name="Subir", exact=True).click()
    expect(page.get_by_text("Certificado (CSD) guardado.")).to_be_visible()

    # The first branch.
    _menu(page).get_by_role("link", name="Alta", exact=True).click()
    page.get_by_role("link", name="Primera sucursal").click()
    page.get_by_role("link", name="Agregar una sucursal").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Clave", exact=True).fill("MATRIZ")
    dialog.get_by_label("Nombre", exact=True).fill("Matriz Monterrey")
    dialog.get_by_label("Código postal (lugar de expedición)").fill("64000")
    dialog.get_by_label("Dirección", exact=True).fill("Av. Constitución 100, Monterrey")
    dialog.get_by_role("button", name="Guardar", exact=True).click()
    expect(page.get_by_text("Sucursal agregada.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("MATRIZ · Matriz Monterrey")

    # The policy, then Publicar.
    _menu(page).get_by_role("link", name="Alta", exact=True).click()
    page.get_by_role("button", name="Confirmar política de facturación").click()
    expect(page.get_by_text("Política de facturación confirmada.")).to_be_visible()
    expect(page.get_by_text("✔ Listo")).to_have_count(5)
    page.get_by_role("button", name="Publicar").click()
    expect(page.get_by_text("¡Listo! Sus clientes ya pueden facturar con usted.")).to_be_visible()

    # A ticket, by the back office's CSV import.
    _menu(page).get_by_role("link", name="Tickets").click()
    page.get_by_label("Archivo CSV").set_input_files(
        files=[{"name": "tickets.csv", "mimeType": "text/csv", "buffer": _ticket_csv("7001")}]
    )
    page.get_by_role("button", name="Cargar tickets").click()
    expect(page.get_by_text(re.compile(r"1 tickets nuevos aceptados"))).to_be_visible()
    _sign_out(page, NEW_ADMIN)

    # A customer invoices it; the sandbox PAC stamps it.
    context = browser.new_context()
    try:
        customer = context.new_page()
        customer.goto(f"{base}/facturar/{NEW_SLUG}/")
        customer.get_by_label("Matriz Monterrey").check()
        customer.get_by_label("RFC", exact=True).fill("XOJI740919U48")
        customer.get_by_role("button", name="Siguiente").click()
        expect(customer.locator("h1")).to_have_text("Datos del ticket")
        fill_ticket(customer, {"order": "700001", "number": "7001", "total": Decimal("36.01")})
        customer.get_by_role("button", name="Generar factura").click()
        expect(customer.locator("h1")).to_have_text("Su factura está lista")
        xml = customer.request.get(
            base + customer.get_by_role("link", name=re.compile("XML")).first.get_attribute("href")
        )
        assert xml.ok
        validate(xml.body())
        emisor = etree.fromstring(xml.body()).find(f"{CFDI}Emisor")
        assert emisor.get("Rfc") == NEW_RFC and emisor.get("Nombre") == NEW_NAME
    finally:
        context.close()


def _renew_the_demo_merchant(app, page, base: str, platform) -> None:
    assert platform["credits"] == 419
    _sign_in(page, base, ADMIN_EMAIL)
    _accept_privacy_notice(page)
    expect(page.get_by_text("Timbres disponibles: 419")).to_be_visible()
    expect(page.get_by_text("VERSION SAT 4.0")).to_be_visible()

    # PASO 3: the quote opens by itself (the licence expires in 10 days); PASO 4: Aceptar.
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Estimado Cliente, le presentamos la cotización")
    expires = platform["expires"].strftime("%Y-%m-%d")
    expect(dialog).to_contain_text(f"Su licencia vence el {expires}.")
    expect(dialog.get_by_label(re.compile("Paquete de 100 timbres"))).to_be_checked()
    dialog.get_by_role("button", name="Generar constancia de pago").click()
    expect(dialog.get_by_role("heading", name="¿Generar la constancia de pago?")).to_be_visible()
    dialog.get_by_role("button", name="Aceptar").click()

    # PASO 5: the slip.
    expect(page.get_by_role("heading", level=1)).to_have_text("Constancia de pago")
    reference = page.locator(".slip-bank dt:has-text('Referencia:') + dd").inner_text().strip()
    assert re.fullmatch(r"\d{7}", reference) and luhn.is_valid(reference)
    table = page.locator("table.slip-lines")
    amounts = [_money(t) for t in table.locator("tbody tr td:last-child").all_inner_texts()]
    assert len(amounts) == 3  # licence, two designs, the stamp package

    figures = {
        " ".join(row.locator("th").inner_text().split()): _money(row.locator("td").inner_text())
        for row in table.locator("tfoot tr").all()
    }
    subtotal, iva, total = figures["SUBTOTAL"], figures["IVA 16 %"], figures["TOTAL"]
    assert subtotal == sum(amounts) == Decimal("4300.00")  # 550 + 2 × 1,800 + 150
    assert iva == (subtotal * Decimal("0.16")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert total == subtotal + iva == Decimal("4988.00")
    expect(page.get_by_text("El monto ya incluye IVA")).to_be_visible()

    # PASO 6: the proof, then out.
    page.get_by_label("Comprobante de pago (PDF, JPG o PNG)").set_input_files(
        files=[{"name": "comprobante.png", "mimeType": "image/png", "buffer": _png()}]
    )
    page.get_by_role("button", name="Subir el comprobante").click()
    expect(page.get_by_text("Recibimos su comprobante de pago.")).to_be_visible()
    expect(page.get_by_text("Comprobante recibido, en revisión")).to_be_visible()
    _sign_out(page, ADMIN_EMAIL)

    # PASO 8: the operator confirms it at /operador/pagos.
    _sign_in(page, base, OPERATOR_EMAIL)
    page.goto(base + "/operador/")
    # The new merchant, published, spent one of its stamps on the customer's invoice.
    new_merchant = page.get_by_role("row").filter(has_text=NEW_NAME).get_by_role("cell")
    expect(new_merchant.nth(4)).to_have_text(str(WELCOME_STAMPS - 1))
    expect(new_merchant.nth(5)).to_have_text("Publicado")
    page.get_by_role("navigation", name="Menú del operador").get_by_role(
        "link", name="Pagos"
    ).click()
    row = page.get_by_role("row").filter(has_text=reference)
    expect(row).to_contain_text("Con comprobante")
    row.get_by_role("link", name="Confirmar pago").click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text(f"$4,988.00 con la referencia {reference}")
    confirm.get_by_role("button", name="Confirmar pago").click()
    expect(page.get_by_text("Pago confirmado: se aplicaron los productos.")).to_be_visible()
    expect(
        page.get_by_text("Factura de la plataforma timbrada y enviada al comercio.")
    ).to_be_visible()
    _sign_out(page, OPERATOR_EMAIL)

    # Back in /admin: the message once, the credits, the new expiry.
    _sign_in(page, base, ADMIN_EMAIL)
    message = page.get_by_role("heading", name="Pago confirmado")
    expect(message).to_be_visible()
    expect(page.get_by_role("status", name="Pago confirmado")).to_contain_text(reference)
    expect(page.get_by_role("link", name="Manual para cambio de versión")).to_be_visible()
    expect(page.get_by_text("Timbres disponibles: 519")).to_be_visible()
    expect(page.get_by_role("dialog")).to_be_hidden()  # not due any more
    page.reload()
    expect(page.get_by_text("Timbres disponibles: 519")).to_be_visible()
    expect(message).to_have_count(0)
    renewed = add_months(platform["expires"], 12).strftime("%Y-%m-%d")
    page.get_by_role("link", name="Renovar").click()
    expect(page.get_by_role("dialog")).to_contain_text(f"Su licencia vence el {renewed}.")

    # The platform's CFDI for the payment, in the merchant's email, its XML attached.
    address = _mail_link(page, base, ADMIN_EMAIL, re.compile(f"Factura .* de {PLATFORM_NAME}"))
    page.goto(base + address)
    attachments = page.get_by_role("listitem").filter(has_text=re.compile(r"\.xml$"))
    expect(attachments).to_have_count(1)
    eml = mail_directory(app.config["MAIL_URL"]) / urlsplit(address).path.rsplit("/", 1)[-1]
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    (xml,) = [
        part.get_content()
        for part in message.iter_attachments()
        if (part.get_filename() or "").endswith(".xml")
    ]
    xml = xml if isinstance(xml, bytes) else xml.encode()
    validate(xml)
    root = etree.fromstring(xml)
    assert root.find(f"{CFDI}Emisor").get("Rfc") == PLATFORM_RFC
    assert root.find(f"{CFDI}Receptor").get("Rfc") == platform["rfc"]
    assert Decimal(root.get("Total")) == total and Decimal(root.get("SubTotal")) == subtotal


def test_a_newcomer_onboards_a_merchant_and_the_demo_merchant_renews(
    app, platform, workers, page, browser, live_server, tmp_path
):
    _onboard_a_new_merchant(app, page, browser, live_server, tmp_path, platform)
    _renew_the_demo_merchant(app, page, live_server, platform)
    assert page.errors == []
