"""The operator confirms a merchant's payment (issue #17, seed 003 PASO 8): the products
applied once, the platform's own CFDI stamped to the merchant and emailed, the bank
statement's CSV matched row by row; the operator's settings (CLABE checked)."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    PaymentSlip,
    PlatformSettings,
    Product,
    ProductKind,
    SlipLine,
    SlipStatus,
    StampMovement,
    Subscription,
)
from webapp.platform import platform_issuer, proofs
from webapp.platform.confirm import add_months, slip_key

CLABE = "012164001016446374"  # the seed's: its check digit is right
MERCHANT_RFC = "EKU9003173C9"
MERCHANT_ADMIN = "admin.kemper@example.com"


def _product(code, kind, price, months=0, stamps=0) -> Product:
    product = Product(
        code=code,
        description=f"Producto {code}",
        kind=kind,
        price=Decimal(price),
        months=months,
        stamps=stamps,
    )
    db.session.add(product)
    return product


def _slip(issuer_id: int, reference: str, lines, status=SlipStatus.PROOF) -> PaymentSlip:
    """A slip with (product, quantity) lines, its totals as SAT rounds them."""
    subtotal = sum((Decimal(p.price) * q for p, q in lines), Decimal("0"))
    iva = (subtotal * Decimal("0.16")).quantize(Decimal("0.01"))
    slip = PaymentSlip(
        issuer_id=issuer_id,
        reference=reference,
        status=status,
        subtotal=subtotal,
        iva=iva,
        total=subtotal + iva,
        lines=[
            SlipLine(
                position=i + 1,
                product=p,
                code=p.code,
                description=p.description,
                quantity=q,
                price=p.price,
                amount=Decimal(p.price) * q,
            )
            for i, (p, q) in enumerate(lines)
        ],
    )
    db.session.add(slip)
    return slip


@pytest.fixture
def shop(app, staff):
    """The demo issuer is the platform's own (it has a CSD; the sandbox PAC stamps); the
    merchant is the second issuer ("otro", EKU9003173C9), its licence expiring in 10 days.
    A slip (with its proof) for a licence, 2 packages of 100 stamps and 2 special designs."""
    with app.app_context():
        now = datetime.now(UTC)
        merchant = db.session.get(Issuer, staff["other_issuer_id"])
        merchant.licence_expires_at = now + timedelta(days=10)
        licence = _product("LIC1", ProductKind.LICENCE, "550.00", months=12)
        stamps = _product("TIM100", ProductKind.STAMPS, "300.00", stamps=100)
        design = _product("DIS", ProductKind.DESIGN, "1800.00")
        db.session.add(
            PlatformSettings(
                beneficiary="Plataforma SA de CV",
                clabe=CLABE,
                platform_issuer_id=staff["issuer_id"],
            )
        )
        slip = _slip(merchant.id, "9354471", [(licence, 1), (stamps, 2), (design, 2)])
        other = _slip(merchant.id, "9354472", [(stamps, 1)], status=SlipStatus.PENDING)
        db.session.commit()
        return {
            "slip": slip.public_id,
            "slip_id": slip.id,
            "total": slip.total,
            "other": other.public_id,
            "other_id": other.id,
            "expires": merchant.licence_expires_at,
            "licence_id": licence.id,
            "design_id": design.id,
            **staff,
        }


@pytest.fixture
def operator(client, admin_login, shop):
    admin_login(client, shop["operator"])
    return client


def _mails(to: str) -> list[MailMessage]:
    return db.session.scalars(
        select(MailMessage).where(MailMessage.to_addrs.contains(to)).order_by(MailMessage.id)
    ).all()


def test_confirming_applies_the_products_once_and_the_platform_invoices_the_merchant(
    app, operator, shop
):
    url = f"/operador/pagos/{shop['slip']}/confirmar"
    page = operator.get("/operador/pagos")
    assert page.status_code == 200
    assert "9354471" in page.get_data(as_text=True)
    assert operator.get(url).status_code == 200  # the question, before anything happens
    dialog = operator.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="modal-title"' in dialog and "<html" not in dialog  # htmx: the dialog alone

    first = operator.post(url)
    assert first.status_code == 303
    assert "hecho=confirmado" in first.headers["Location"]
    second = operator.post(url)
    assert "hecho=ya" in second.headers["Location"]

    with app.app_context():
        merchant = db.session.get(Issuer, shop["other_issuer_id"])
        slip = db.session.get(PaymentSlip, shop["slip_id"])
        assert slip.status is SlipStatus.CONFIRMED and slip.confirmed_at is not None
        # Two packages of 100 stamps: 200 credits, one purchase in the ledger.
        assert merchant.stamp_credits == 200
        ledger = db.session.scalars(
            select(StampMovement).where(StampMovement.issuer_id == merchant.id)
        ).all()
        assert [(m.delta, m.balance, m.reason, m.slip_id) for m in ledger] == [
            (200, 200, "purchase", slip.id)
        ]
        # The licence moves 12 months on from its expiry (still in the future), not from now.
        assert merchant.licence_expires_at == add_months(shop["expires"], 12)
        subscriptions = {
            s.product_id: s.quantity
            for s in db.session.scalars(
                select(Subscription).where(Subscription.issuer_id == merchant.id)
            )
        }
        assert subscriptions == {shop["licence_id"]: 1, shop["design_id"]: 2}
        # The platform's CFDI: one, stamped by the platform's issuer to the merchant's RFC.
        invoices = db.session.scalars(
            select(Invoice).where(Invoice.idempotency_key == slip_key(slip.id))
        ).all()
        assert len(invoices) == 1
        invoice = invoices[0]
        assert slip.invoice_id == invoice.id
        assert invoice.status is InvoiceStatus.STAMPED
        assert invoice.issuer_id == shop["issuer_id"]
        assert invoice.receptor_rfc == MERCHANT_RFC and invoice.uso_cfdi == "G03"
        assert invoice.total == shop["total"]
        assert MERCHANT_RFC.encode() in invoice.xml
        # Emailed: the invoice (XML and PDF) and the "pago confirmado", once each.
        mails = _mails(MERCHANT_ADMIN)
        subjects = [m.subject for m in mails]
        assert len(mails) == 2, subjects
        assert any("9354471" in s for s in subjects)
        confirmed = next(m for m in mails if "9354471" in m.subject)
        assert "Timbres disponibles: 200" in confirmed.body_text

    detail = operator.get(f"/operador/pagos/{shop['slip']}").get_data(as_text=True)
    assert "Factura de la plataforma timbrada" in detail
    assert "Reintentar factura" not in detail


def test_a_lapsed_licence_starts_again_today(app, operator, shop):
    with app.app_context():
        merchant = db.session.get(Issuer, shop["other_issuer_id"])
        merchant.licence_expires_at = datetime.now(UTC) - timedelta(days=40)
        db.session.commit()
    before = datetime.now(UTC)
    operator.post(f"/operador/pagos/{shop['slip']}/confirmar")
    after = datetime.now(UTC)
    with app.app_context():
        expires = db.session.get(Issuer, shop["other_issuer_id"]).licence_expires_at
        assert add_months(before, 12) - timedelta(seconds=1) <= expires <= add_months(after, 12)


def test_without_the_platform_issuer_the_payment_is_confirmed_and_its_cfdi_waits(
    app, operator, shop
):
    with app.app_context():
        db.session.scalar(select(PlatformSettings)).platform_issuer_id = None
        db.session.commit()
    operator.post(f"/operador/pagos/{shop['slip']}/confirmar")
    with app.app_context():
        slip = db.session.get(PaymentSlip, shop["slip_id"])
        assert slip.status is SlipStatus.CONFIRMED and slip.invoice_id is None
        assert db.session.get(Issuer, shop["other_issuer_id"]).stamp_credits == 200
    listing = operator.get("/operador/pagos").get_data(as_text=True)
    assert "factura pendiente" in listing.lower()
    page = operator.get(f"/operador/pagos/{shop['slip']}").get_data(as_text=True)
    assert "no hay emisor de la plataforma" in page
    assert "Reintentar factura" in page

    with app.app_context():  # the operator picks it, then retries
        db.session.scalar(select(PlatformSettings)).platform_issuer_id = shop["issuer_id"]
        db.session.commit()
    retried = operator.post(f"/operador/pagos/{shop['slip']}/factura")
    assert retried.status_code == 303
    with app.app_context():
        slip = db.session.get(PaymentSlip, shop["slip_id"])
        assert slip.invoice_id is not None
        assert db.session.get(Invoice, slip.invoice_id).status is InvoiceStatus.STAMPED
        assert db.session.get(Issuer, shop["other_issuer_id"]).stamp_credits == 200


def test_two_confirmations_at_once_apply_the_slip_once(app, admin_login, shop):
    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        admin_login(c, shop["operator"])
    start = threading.Barrier(2)
    answers, errors = [], []

    def press(c):
        try:
            start.wait()
            answers.append(c.post(f"/operador/pagos/{shop['slip']}/confirmar").headers["Location"])
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted("hecho=ya" in a for a in answers) == [False, True]
    with app.app_context():
        assert db.session.get(Issuer, shop["other_issuer_id"]).stamp_credits == 200
        count = db.session.scalar(
            select(func.count()).where(StampMovement.issuer_id == shop["other_issuer_id"])
        )
        assert count == 1
        keyed = select(func.count()).where(Invoice.idempotency_key == slip_key(shop["slip_id"]))
        assert db.session.scalar(keyed) == 1
        assert len([m for m in _mails(MERCHANT_ADMIN) if "9354471" in m.subject]) == 1


def test_the_bank_statement_is_matched_row_by_row(app, operator, shop):
    total = f"{shop['total']:,.2f}"
    csv = (
        "fecha,referencia,monto\n"
        f'2026-01-15,9354471,"${total}"\n'  # matched: confirmed
        "16/01/2026,9354472,1.00\n"  # the reference is a slip's, the amount is not
        "2026-01-17,1111111,348.00\n"  # nobody's reference
        f'2026-01-18,9354471,"{total}"\n'  # the same payment again: already confirmed
        "2026-01-19,9354472,mucho\n"  # not an amount
    ).encode()
    answer = operator.post(
        "/operador/pagos/estado-de-cuenta",
        data={"file": (io.BytesIO(csv), "estado.csv", "text/csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    for label in (
        "Confirmado",
        "Monto distinto",
        "Referencia desconocida",
        "Ya confirmada",
        "Fila ilegible",
    ):
        assert label in page
    assert "1 confirmados, 1 con monto distinto, 1 con referencia desconocida" in page
    with app.app_context():
        assert db.session.get(PaymentSlip, shop["slip_id"]).status is SlipStatus.CONFIRMED
        assert db.session.get(PaymentSlip, shop["other_id"]).status is SlipStatus.PENDING
        assert db.session.get(Issuer, shop["other_issuer_id"]).stamp_credits == 200

    assert "referencia" in operator.get("/operador/pagos/estado-de-cuenta").get_data(as_text=True)
    sample = operator.get("/operador/pagos/estado-de-cuenta/ejemplo.csv")
    assert sample.headers["Content-Disposition"].startswith("attachment")
    assert sample.get_data(as_text=True).lstrip("\ufeff").startswith("fecha,referencia,monto")
    bad = operator.post(
        "/operador/pagos/estado-de-cuenta",
        data={"file": (io.BytesIO(b"dia,ref\n1,2\n"), "x.csv", "text/csv")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    assert "Columna desconocida" in bad.get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (CLABE, None),
        ("012 164 00101644637 4", None),
        ("012164001016446375", "check_digit"),
        ("01216400101644637", "length"),
        ("01216400101644637A", "digits"),
    ],
)
def test_clabe_check_digit(value, problem):
    assert platform_issuer.clabe_problem(platform_issuer.normalize_clabe(value)) == problem


def test_the_proof_is_downloaded_by_the_operator_only(app, client, admin_login, shop, tmp_path):
    directory = tmp_path / "proofs"
    app.config["PROOFS_DIR"] = str(directory)
    with app.app_context():
        slip = db.session.get(PaymentSlip, shop["slip_id"])
        slip.proof_name = proofs.save(directory, b"%PDF-1.4 comprobante", "application/pdf")
        slip.proof_type = "application/pdf"
        db.session.commit()
    url = f"/operador/pagos/{shop['slip']}/comprobante"
    assert client.get(url).status_code == 303  # signed out: to the sign-in
    admin_login(client, shop["other_admin"])  # the merchant's own admin: not the operator
    assert client.get(url).status_code == 403
    assert client.get("/operador/pagos").status_code == 403
    client.post("/admin/salir")
    operator = app.test_client()
    admin_login(operator, shop["operator"])
    answer = operator.get(url)
    assert answer.status_code == 200
    assert answer.mimetype == "application/pdf"
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert "comprobante-9354471.pdf" in answer.headers["Content-Disposition"]
    assert answer.get_data() == b"%PDF-1.4 comprobante"
    assert operator.get("/operador/pagos/nada/comprobante").status_code == 404


def _settings_form(**changes) -> dict:
    form = {
        "beneficiary": "Sistemas de la Plataforma SA de CV",
        "bank": "BBVA",
        "account": "0101644637",
        "clabe": CLABE,
        "banks": "BBVA\nBanorte\nSantander",
        "grace_days": "10",
        "thresholds": "50, 10, 0",
        "platform_issuer": "",
    }
    form.update(changes)
    return form


def test_the_settings_are_checked_and_saved(app, operator, shop):
    assert operator.get("/operador/ajustes").status_code == 200
    bad = operator.post(
        "/operador/ajustes",
        data=_settings_form(
            clabe="012164001016446375", grace_days="mil", thresholds="a,b", beneficiary=""
        ),
    )
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "El dígito verificador de esta CLABE no corresponde" in page
    assert "Un número de días entre 0 y 365" in page
    assert "Números enteros separados por comas" in page
    assert "Escriba a nombre de quién se deposita" in page
    unknown = operator.post("/operador/ajustes", data=_settings_form(platform_issuer="999999"))
    assert unknown.status_code == 422
    assert "Elija un emisor de la lista" in unknown.get_data(as_text=True)

    saved = operator.post(
        "/operador/ajustes", data=_settings_form(platform_issuer=str(shop["issuer_id"]))
    )
    assert saved.status_code == 303
    with app.app_context():
        row = db.session.scalar(select(PlatformSettings))
        assert row.clabe == CLABE and row.banks == "BBVA, Banorte, Santander"
        assert row.grace_days == 10 and row.low_credit_thresholds == "50,10,0"
        assert row.platform_issuer_id == shop["issuer_id"]
        assert db.session.scalar(select(func.count()).select_from(PlatformSettings)) == 1
    assert "Ajustes guardados" in operator.get(saved.headers["Location"]).get_data(as_text=True)


def test_issuer_staff_cannot_reach_the_operator_settings(client, admin_login, shop):
    admin_login(client, shop["admin"])
    assert client.get("/operador/ajustes").status_code == 403
    assert client.post("/operador/ajustes", data=_settings_form()).status_code == 403
