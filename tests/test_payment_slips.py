"""The merchant's renewal (issue #17, seed 003 PASO 3–8): the quote within 30 days of the
licence's expiry, "No deseo…" until the next sign-in, the confirmation, the constancia de pago
(its figures, reference and PDF), the proof of payment, the top bar and the message of a
confirmed payment; another issuer's slip is a 404."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import luhn

from tests.flows import text_of
from webapp.extensions import db
from webapp.models import Issuer, PaymentSlip, PlatformSettings, Product, Subscription
from webapp.models.platform import ProductKind, SlipStatus
from webapp.platform import quote, reference, slips, words

QUOTE_TEXT = (
    "Estimado Cliente, le presentamos la cotización para la renovación de sus productos. Favor "
    "de marcar los productos que desea renovar, para generar su referencia y pueda realizar su "
    "pago."
)


def _set_licence(app, issuer_id: int, days: float | None) -> None:
    with app.app_context():
        issuer = db.session.get(Issuer, issuer_id)
        issuer.licence_expires_at = (
            None if days is None else datetime.now(UTC) + timedelta(days=days)
        )
        db.session.commit()


@pytest.fixture
def merchant(app, staff):
    """The demo issuer with the seed's two products (SP0800 $575, 105077 $550) and a design
    it does not renew unless ticked; its licence expires in 10 days; 419 stamp credits; the
    operator's bank details. Answers the product ids and the staff fixture."""
    with app.app_context():
        products = [
            Product(
                code="105077",
                description="Anualidad NIVEL 1",
                kind=ProductKind.LICENCE,
                price=Decimal("550.00"),
                months=12,
            ),
            Product(
                code="SP0800",
                description="Actualizacion 3.3 NIVEL A",
                kind=ProductKind.UPGRADE,
                price=Decimal("575.00"),
            ),
            Product(
                code="DIS01",
                description="Diseños especiales de factura",
                kind=ProductKind.DESIGN,
                price=Decimal("1800.00"),
            ),
        ]
        db.session.add_all(products)
        db.session.flush()
        for product, quantity in zip(products, (1, 1, 2), strict=True):
            db.session.add(
                Subscription(issuer_id=staff["issuer_id"], product_id=product.id, quantity=quantity)
            )
        issuer = db.session.get(Issuer, staff["issuer_id"])
        issuer.licence_expires_at = datetime.now(UTC) + timedelta(days=10)
        issuer.stamp_credits = 419
        db.session.add(
            PlatformSettings(
                beneficiary="Sistemas Perseo S.A. de C.V.",
                bank="Bancomer",
                account="0101644637",
                clabe="012164001016446374",
                banks="BBVA Bancomer, Banco del Bajío, HSBC, Santander, Banamex",
            )
        )
        db.session.commit()
        return {"ids": [p.id for p in products], **staff}


def _seed_pick(merchant) -> dict:
    """The seed's slip: the licence and the upgrade, not the designs."""
    licence, upgrade, _design = merchant["ids"]
    return {"producto": [str(licence), str(upgrade)]}


def _generate(client, merchant) -> str:
    response = client.post("/admin/constancias", data=_seed_pick(merchant))
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


# --- The domain: figures, words, references --------------------------------------------------


def test_iva_rounds_half_up_to_cents():
    assert quote.iva_of(Decimal("1125.00")) == Decimal("180.00")
    assert quote.iva_of(Decimal("0.03")) == Decimal("0.00")  # 0.0048
    assert quote.iva_of(Decimal("0.07")) == Decimal("0.01")  # 0.0112
    assert quote.iva_of(Decimal("10.03")) == Decimal("1.60")  # 1.6048
    assert quote.iva_of(Decimal("10.05")) == Decimal("1.61")  # 1.608
    assert quote.iva_of(Decimal("0.78125")) == Decimal("0.13")  # 0.125 → half up
    totals = quote.totals_of([Decimal("575.00"), Decimal("550.00")])
    assert (totals.subtotal, totals.iva, totals.total) == (
        Decimal("1125.00"),
        Decimal("180.00"),
        Decimal("1305.00"),
    )


@pytest.mark.run_once
@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1305", "MIL TRESCIENTOS CINCO PESOS 00/100 M.N."),
        ("0", "CERO PESOS 00/100 M.N."),
        ("0.99", "CERO PESOS 99/100 M.N."),  # noqa: E501
        ("1", "UN PESO 00/100 M.N."),
        ("1.5", "UN PESO 50/100 M.N."),
        ("2", "DOS PESOS 00/100 M.N."),
        ("10", "DIEZ PESOS 00/100 M.N."),
        ("15", "QUINCE PESOS 00/100 M.N."),
        ("16", "DIECISÉIS PESOS 00/100 M.N."),
        ("20", "VEINTE PESOS 00/100 M.N."),
        ("21", "VEINTIÚN PESOS 00/100 M.N."),
        ("22", "VEINTIDÓS PESOS 00/100 M.N."),
        ("30", "TREINTA PESOS 00/100 M.N."),
        ("31", "TREINTA Y UN PESOS 00/100 M.N."),
        ("99", "NOVENTA Y NUEVE PESOS 00/100 M.N."),
        ("100", "CIEN PESOS 00/100 M.N."),
        ("101", "CIENTO UN PESOS 00/100 M.N."),
        ("115", "CIENTO QUINCE PESOS 00/100 M.N."),
        ("500", "QUINIENTOS PESOS 00/100 M.N."),
        ("580", "QUINIENTOS OCHENTA PESOS 00/100 M.N."),
        ("777", "SETECIENTOS SETENTA Y SIETE PESOS 00/100 M.N."),
        ("999", "NOVECIENTOS NOVENTA Y NUEVE PESOS 00/100 M.N."),
        ("1000", "MIL PESOS 00/100 M.N."),
        ("1001", "MIL UN PESOS 00/100 M.N."),
        ("2000", "DOS MIL PESOS 00/100 M.N."),
        ("4500", "CUATRO MIL QUINIENTOS PESOS 00/100 M.N."),
        ("21000", "VEINTIÚN MIL PESOS 00/100 M.N."),
        ("31000", "TREINTA Y UN MIL PESOS 00/100 M.N."),
        ("100000", "CIEN MIL PESOS 00/100 M.N."),
        ("101000", "CIENTO UN MIL PESOS 00/100 M.N."),
        ("999999.99", "NOVECIENTOS NOVENTA Y NUEVE MIL NOVECIENTOS NOVENTA Y NUEVE PESOS 99/100 M.N."),  # noqa: E501
        ("1000000", "UN MILLÓN DE PESOS 00/100 M.N."),
        ("1000001", "UN MILLÓN UN PESOS 00/100 M.N."),
        ("2500000", "DOS MILLONES QUINIENTOS MIL PESOS 00/100 M.N."),
        ("21000000", "VEINTIÚN MILLONES DE PESOS 00/100 M.N."),
        ("1000000000", "MIL MILLONES DE PESOS 00/100 M.N."),
        ("1234567.891", "UN MILLÓN DOSCIENTOS TREINTA Y CUATRO MIL QUINIENTOS SESENTA Y SIETE PESOS 89/100 M.N."),  # noqa: E501
        ("0.005", "CERO PESOS 01/100 M.N."),
    ],
)  # fmt: skip
def test_amount_in_words(amount, expected):
    assert words.amount_in_words(Decimal(amount)) == expected


@pytest.mark.run_once
def test_every_number_below_two_thousand_reads_as_spanish():
    seen = set()
    for n in range(2000):
        text = words.number_in_words(n)
        assert re.fullmatch(r"[A-ZÁÉÍÓÚ]+( [A-ZÁÉÍÓÚ]+)*", text), (n, text)
        assert "  " not in text and "CERO" not in text[1:] or n == 0
        seen.add(text)
    assert len(seen) == 2000  # no two numbers read the same
    assert words.amount_in_words(Decimal("1"), "USD") == "UN DÓLAR 00/100 USD"


@pytest.mark.run_once
def test_references_carry_a_luhn_check_digit():
    for _ in range(200):
        ref = reference.new_reference()
        assert len(ref) == 7 and ref.isdigit() and ref[0] != "0"
        assert reference.is_valid(ref) and luhn.is_valid(ref)
        wrong = ref[:-1] + str((int(ref[-1]) + 1) % 10)
        assert not reference.is_valid(wrong)
        swapped = ref[1] + ref[0] + ref[2:]
        assert ref[0] == ref[1] or not reference.is_valid(swapped) or {ref[0], ref[1]} == {"0", "9"}
    assert reference.new_reference(lambda _n: 0) == "1000009"


# --- PASO 3: the quote -------------------------------------------------------------------------


def test_the_quote_shows_itself_within_30_days_not_at_60(app, client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    page = client.get("/admin/").get_data(as_text=True)
    assert 'hx-get="/admin/renovar" hx-trigger="load" hx-target="#modal"' in page
    assert "Ver la cotización para la renovación" in page  # without JavaScript

    dialog = client.get("/admin/renovar", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<h1 id="modal-title">' in dialog[:200]
    assert "<html" not in dialog
    assert QUOTE_TEXT in dialog
    for text in (
        "Anualidad NIVEL 1 - Costo: $550.00",
        "Actualizacion 3.3 NIVEL A - Costo: $575.00",
        "2 Diseños especiales de factura - Costo total: $3,600.00",
        "Generar constancia de pago",
        "No deseo generar en este momento la constancia de pago",
        "Descargar manual para realizar el pago",
    ):
        assert text in dialog, text
    assert "$4,725.00" in dialog  # all ticked: the subtotal

    _set_licence(app, merchant["issuer_id"], 60)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'hx-trigger="load"' not in page and "Ver la cotización" not in page
    # but staff open it whenever they want
    assert QUOTE_TEXT in client.get("/admin/renovar").get_data(as_text=True)

    _set_licence(app, merchant["issuer_id"], -3)  # expired: shown too
    page = client.get("/admin/").get_data(as_text=True)
    assert 'hx-trigger="load"' in page and "Su licencia venció" in page


def test_the_total_follows_the_ticks(client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    data = _seed_pick(merchant)
    fragment = client.post(
        "/admin/renovar/total", data=data, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert fragment.strip().startswith('<dl id="cotizacion-total"')
    assert "$1,125.00" in fragment and "$180.00" in fragment and "$1,305.00" in fragment
    # without JavaScript: "Actualizar total" brings the whole quote back, ticks kept
    page = client.post("/admin/renovar/total", data=data).get_data(as_text=True)
    assert QUOTE_TEXT in page and "$1,305.00" in page and "Actualizar total" in page
    design = merchant["ids"][2]
    assert f'value="{design}">' in page and f'value="{design}" checked' not in page
    # nothing ticked: 422 and a message by the products
    response = client.post("/admin/renovar", data={})
    assert response.status_code == 422
    assert "Marque al menos un producto para renovar." in response.get_data(as_text=True)


def test_no_deseo_hides_the_quote_until_the_next_sign_in(client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    response = client.post("/admin/renovar/despues")
    assert response.status_code == 303
    for path in ("/admin/", "/admin/facturas"):
        assert 'hx-trigger="load"' not in client.get(path).get_data(as_text=True)
    client.post("/admin/salir")
    admin_login(client, merchant["admin"])
    assert 'hx-trigger="load"' in client.get("/admin/").get_data(as_text=True)


def test_branch_staff_see_neither_the_quote_nor_the_slips(client, merchant, admin_login):
    admin_login(client, merchant["branch"])
    page = client.get("/admin/").get_data(as_text=True)
    assert 'hx-trigger="load"' not in page and "Consultar Constancia de Pago" not in page
    assert "Timbres disponibles: 419" in page
    assert client.get("/admin/renovar").status_code == 403
    assert client.get("/admin/constancias").status_code == 403


# --- PASO 4–5: the confirmation and the slip ---------------------------------------------------


def test_generating_asks_then_makes_the_slip(app, client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    confirm = client.post("/admin/renovar", data=_seed_pick(merchant))
    assert confirm.status_code == 200
    text = confirm.get_data(as_text=True)
    assert "¿Generar la constancia de pago" in text and "$1,305.00" in text
    assert "Aceptar" in text and "Cancelar" in text
    with app.app_context():
        assert db.session.scalars(select(PaymentSlip)).all() == []  # not yet

    location = _generate(client, merchant)
    page = client.get(location).get_data(as_text=True)
    for label in (
        "Código",
        "Cantidad",
        "Descripción",
        "Incluir en pago",
        "Precio",
        "Importe",
        "SUBTOTAL",
        "IVA 16 %",
        "TOTAL",
        "Realizar el pago en línea o ventanilla de cualquier banco",
        "Sistemas Perseo S.A. de C.V.",
        "0101644637",
        "012164001016446374",
        "MIL TRESCIENTOS CINCO PESOS 00/100 M.N.",
        "El monto ya incluye IVA",
        "Luhn",
        "Banco del Bajío",
        "$1,125.00",
        "$180.00",
        "$1,305.00",
    ):
        assert label in page, label
    with app.app_context():
        slip = db.session.scalars(select(PaymentSlip)).one()
        assert (slip.subtotal, slip.iva, slip.total) == (
            Decimal("1125.00"),
            Decimal("180.00"),
            Decimal("1305.00"),
        )
        assert slip.status is SlipStatus.PENDING and reference.is_valid(slip.reference)
        assert [(line.code, line.included) for line in slip.lines] == [
            ("105077", True),
            ("DIS01", False),
            ("SP0800", True),
        ]
        ref, public_id = slip.reference, slip.public_id
    assert ref in page

    pdf = client.get(f"/admin/constancias/{public_id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    text = text_of(pdf.data)
    for piece in (
        f"Referencia: {ref}",
        "SUBTOTAL $ 1,125.00",
        "IVA 16 % $ 180.00",
        "TOTAL $ 1,305.00",
        "MIL TRESCIENTOS CINCO PESOS 00/100 M.N.",
        "El monto ya incluye IVA",
        "Sistemas Perseo S.A. de C.V.",
        "012164001016446374",
        "Anualidad NIVEL 1",
    ):
        assert piece in text, piece

    # the quote no longer opens itself while the slip waits for its payment
    assert 'hx-trigger="load"' not in client.get("/admin/").get_data(as_text=True)
    listing = client.get("/admin/constancias").get_data(as_text=True)
    assert ref in listing and "Pendiente de pago" in listing


def test_the_manuals_are_pdfs(client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    text = text_of(client.get("/admin/renovar/manual.pdf").data)
    assert "PASO 2. Aviso de privacidad" in text and "NÚMERO DE REFERENCIA" in text
    text = text_of(client.get("/admin/manual-cambio-de-version.pdf").data)
    assert "versión 4.0" in text


def test_references_stay_unique_under_concurrent_generation(app, merchant):
    """20 slips generated at once, each in its own session; the draws are forced to collide
    (a draw of two values) where the database's constraint must make the loser draw again."""
    issuer_id = merchant["issuer_id"]
    ids = set(merchant["ids"][:2])
    barrier = threading.Barrier(20)
    errors = []
    lock = threading.Lock()
    counter = iter(range(10**6))

    def draw(_n):
        with lock:
            return next(counter) // 2  # each value drawn twice: every second draw collides

    def work():
        try:
            with app.app_context():
                engine = db.engine
            barrier.wait(timeout=30)  # before taking a connection: the pool holds 15
            with Session(engine) as session:
                issuer = session.get(Issuer, issuer_id)
                slips.generate(session, issuer, None, ids, datetime.now(UTC), randbelow=draw)
                session.commit()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with app.app_context():
        refs = db.session.scalars(select(PaymentSlip.reference)).all()
    assert len(refs) == 20 == len(set(refs))
    assert next(counter) >= 39  # 20 values, each but the last one drawn twice: 19 collided
    assert all(reference.is_valid(r) for r in refs)


# --- PASO 6: the proof of payment --------------------------------------------------------------


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "JPEG")
    return out.getvalue()


def _upload(client, location, data: bytes, name: str, content_type: str):
    return client.post(
        f"{location}/comprobante",
        data={"proof": (io.BytesIO(data), name, content_type)},
        content_type="multipart/form-data",
    )


def test_the_proof_is_judged_by_its_content(app, client, merchant, admin_login, tmp_path):
    app.config["PROOFS_DIR"] = str(tmp_path / "proofs")
    admin_login(client, merchant["admin"])
    location = _generate(client, merchant)

    refused = [
        (b"hola, soy texto", "comprobante.pdf", "application/pdf"),  # renamed text file
        (b"GIF89a" + b"\0" * 20, "pago.png", "image/png"),
        (b"", "vacio.pdf", "application/pdf"),
        (b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024), "grande.pdf", "application/pdf"),
    ]
    messages = [
        "El comprobante debe ser un PDF, JPG o PNG.",
        "El comprobante debe ser un PDF, JPG o PNG.",
        "Elija el archivo del comprobante de pago.",
        "El archivo pesa más de 3 MB.",
    ]
    for (data, name, kind), message in zip(refused, messages, strict=True):
        response = _upload(client, location, data, name, kind)
        assert response.status_code == 422, name
        html = response.get_data(as_text=True)
        assert message in html, name
        assert 'id="comprobante-error"' in html and 'aria-invalid="true"' in html
    assert not (tmp_path / "proofs").exists() or not any((tmp_path / "proofs").iterdir())

    pdf = client.get(f"{location}.pdf").data
    for data, name, kind, mime in (
        (pdf, "pago.pdf", "application/pdf", "application/pdf"),
        (_png(), "foto.txt", "text/plain", "image/png"),  # the name and type say nothing
        (_jpeg(), "ticket.jpg", "image/jpeg", "image/jpeg"),
    ):
        response = _upload(client, location, data, name, kind)
        assert response.status_code == 303, response.get_data(as_text=True)[:400]
        with app.app_context():
            slip = db.session.scalars(select(PaymentSlip)).one()
            assert slip.status is SlipStatus.PROOF and slip.proof_type == mime
            stored = tmp_path / "proofs" / slip.proof_name
            assert stored.read_bytes() == data
    assert len(list((tmp_path / "proofs").iterdir())) == 1  # a new proof replaces the old
    page = client.get(location + "?recibido=1").get_data(as_text=True)
    assert "Recibimos su comprobante de pago." in page
    download = client.get(f"{location}/comprobante")
    assert download.status_code == 200 and download.data == _jpeg()[:0] + download.data
    assert download.headers["Content-Type"] == "image/jpeg"
    assert "Comprobante recibido, en revisión" in client.get("/admin/constancias").get_data(
        as_text=True
    )


# --- PASO 7–8: the top bar and the confirmation's message --------------------------------------


def test_the_top_bar(app, client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    page = client.get("/admin/").get_data(as_text=True)
    assert "Consultar Constancia de Pago" in page
    assert "VERSION SAT 4.0" in page and "Timbres disponibles: 419" in page
    with app.app_context():
        issuer = db.session.get(Issuer, merchant["issuer_id"])
        issuer.stamp_credits = None
        issuer.country = "EC"
        db.session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert "Consultar Constancia de Pago" in page
    assert "VERSION SAT 4.0" not in page and "Timbres disponibles" not in page


def test_a_confirmed_payment_is_announced_once(app, client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    location = _generate(client, merchant)
    with app.app_context():
        slip = db.session.scalars(select(PaymentSlip)).one()
        slip.status = SlipStatus.CONFIRMED  # what the operator's confirmation does
        slip.confirmed_at = datetime.now(UTC)
        db.session.commit()
        ref = slip.reference
    client.post("/admin/salir")
    admin_login(client, merchant["admin"])
    page = client.get("/admin/").get_data(as_text=True)
    assert "Pago confirmado" in page and ref in page
    assert "Manual para cambio de versión" in page
    assert 'href="/admin/manual-cambio-de-version.pdf"' in page
    assert "Manual para cambio de versión" not in client.get("/admin/").get_data(as_text=True)
    assert "Pago confirmado" in client.get(location).get_data(as_text=True)  # its state
    with app.app_context():
        assert db.session.scalars(select(PaymentSlip)).one().announced_at is not None


def test_another_issuers_slip_is_a_404(app, client, merchant, admin_login):
    admin_login(client, merchant["admin"])
    location = _generate(client, merchant)
    public_id = location.rsplit("/", 1)[1]
    client.post("/admin/salir")
    admin_login(client, merchant["other_admin"])
    for path in (
        f"/admin/constancias/{public_id}",
        f"/admin/constancias/{public_id}.pdf",
        f"/admin/constancias/{public_id}/comprobante",
    ):
        assert client.get(path).status_code == 404, path
    assert _upload(client, location, _png(), "a.png", "image/png").status_code == 404
    assert public_id not in client.get("/admin/constancias").get_data(as_text=True)


@pytest.mark.browser
def test_the_quote_in_a_browser(page, live_server, app, merchant):
    """Signed in with the licence due: the quote opens as a modal <dialog>, the total follows
    the ticks, Generar asks in the dialog, Aceptar shows the slip; no script error (CSP)."""
    from playwright.sync_api import expect

    from webapp.demo.staff import STAFF_PASSWORD

    page.goto(f"{live_server}/admin/entrar")
    page.get_by_label("Correo electrónico").fill(merchant["admin"])
    page.get_by_label("Contraseña").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    dialog = page.locator("dialog#modal")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Estimado Cliente, le presentamos la cotización")
    total = dialog.locator("#cotizacion-total")
    expect(total).to_contain_text("$5,481.00")  # 4,725.00 + 756.00
    dialog.get_by_label(re.compile("Diseños especiales de factura")).uncheck()
    expect(total).to_contain_text("$1,305.00")
    dialog.get_by_role("button", name="Generar constancia de pago").click()
    expect(dialog).to_contain_text("¿Generar la constancia de pago por $1,305.00")
    dialog.get_by_role("button", name="Aceptar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Constancia de pago")
    expect(page.locator("main")).to_contain_text("MIL TRESCIENTOS CINCO PESOS 00/100 M.N.")
    assert page.errors == []
