"""The demo merchant: `flask demo load` and `flask demo tickets`, its fiscal data and its CSD."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.serialization import load_der_private_key
from satcfdi import catalogs
from satcfdi.models import Signer
from satcfdi.models.certificate import CertificateType
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from stdnum.mx import rfc as stdnum_rfc

from webapp import crypto
from webapp.cfdi.testcsd import TEST_AUTHORITY, make_test_csd
from webapp.csd import CSDError, issuer_signer, store_csd
from webapp.demo.data import load_demo
from webapp.extensions import db
from webapp.models import (
    BillKind,
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
    TicketStatus,
)

MEXICO_CITY = ZoneInfo("America/Mexico_City")
CENT = Decimal("0.01")
# satcfdi reads certificates through pyOpenSSL's deprecated X509 accessors.
KEYS = {"branch_code", "branch_name", "order_number", "ticket_number", "total", "sold_at"}


def in_catalog(name: str, code: str) -> bool:
    return catalogs.select(name, code) is not None


def load(app) -> str:
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def demo(app):
    """The demo merchant as `flask demo load` makes it (without the telecom provider, which
    the load command adds beside it: test_load_creates_the_merchant_once)."""
    with app.app_context():
        yield load_demo(db.session, crypto.cipher_from_config(app.config)).issuer


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_load_creates_the_merchant_once(app):
    first = load(app)
    second = load(app)
    assert "Created demo issuer" in first
    assert "Created demo telecom provider 'telcel-demo'" in first
    assert "nothing changed" in second and "Created" not in second
    assert "Created the Ecuadorian demo" in first
    assert "Created the platform operator's demo" in first
    with app.app_context():
        # The merchant, the telecom provider and the Ecuadorian demo's two
        # (tests/test_demo_ecuador.py); the counts below are the Mexican telecom's.
        # ... and the platform operator's own issuer (webapp/demo/platform.py).
        assert count(Issuer) == 5
        assert count(Issuer, Issuer.country == "MX") == 3
        assert count(Issuer, Issuer.kind == "services", Issuer.country == "MX") == 1
        telcel = select(Issuer.id).where(Issuer.slug == "telcel-demo").scalar_subquery()
        assert count(Branch, Branch.issuer_id == telcel) == 1  # its billing branch
        assert count(ServiceAccount, ServiceAccount.issuer_id == telcel) == 500
        assert count(ServiceLine, ServiceLine.issuer_id == telcel) == 800
        # Six months of bills, one per account and period, each with its sale (a ticket of
        # the telecom's billing branch); the invoices of the holders with fiscal data.
        assert count(ServiceBill, ServiceBill.issuer_id == telcel) == 6 * 500
        invoice_bills = (ServiceBill.issuer_id == telcel, ServiceBill.kind == BillKind.INVOICE)
        assert count(ServiceBill, *invoice_bills) == 6 * 50
        stamped = (Invoice.issuer_id == telcel, Invoice.status == InvoiceStatus.STAMPED)
        assert count(Invoice, *stamped) == 6 * 50
        assert count(Payment, Payment.issuer_id == telcel) > 4 * 500
        retail = select(Branch.id).join(Issuer).where(Issuer.slug == "demo")
        assert (
            count(Ticket, Ticket.status == TicketStatus.OPEN, Ticket.branch_id.in_(retail)) == 2000
        )
        assert count(Ticket, Ticket.branch_id.in_(retail)) == 2000


def test_fiscal_data_is_valid(demo):
    assert stdnum_rfc.is_valid(demo.rfc, validate_check_digits=True)
    assert len(demo.rfc) == 12  # persona moral
    assert demo.legal_name == demo.legal_name.upper()
    assert not any(s in demo.legal_name for s in ("S.A.", "SA DE CV", "S DE RL"))
    assert (demo.slug, demo.regimen_fiscal, demo.serie, demo.next_folio) == ("demo", "601", "A", 1)
    assert in_catalog("C756_c_CodigoPostal", demo.cp)
    branches = db.session.scalars(select(Branch).where(Branch.issuer_id == demo.id)).all()
    assert len({b.code for b in branches}) == 3
    for branch in branches:
        assert branch.active and branch.name and branch.address
        assert in_catalog("C756_c_CodigoPostal", branch.cp)


def test_tickets_add_up_and_look_like_retail_sales(demo):
    tickets = db.session.scalars(select(Ticket).options(selectinload(Ticket.lines))).all()
    taxes, numbers = set(), set()
    now = datetime.now(UTC)
    month_start = now.astimezone(MEXICO_CITY).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    in_month = 0
    for ticket in tickets:
        assert 1 <= len(ticket.lines) <= 6
        expected = Decimal("0.00")
        for line in ticket.lines:
            importe = (line.quantity * line.unit_price).quantize(CENT, ROUND_HALF_UP)
            tax = Decimal(0)
            if line.tax_factor == "Tasa":
                tax = (importe * line.tax_rate).quantize(CENT, ROUND_HALF_UP)
            expected += importe + tax
            taxes.add((line.tax_factor, line.tax_rate))
            assert line.objeto_imp == "02"
            assert line.quantity > 0
            assert line.unit_price == line.unit_price.quantize(CENT) > 0
            assert in_catalog("C756_c_ClaveProdServ", line.clave_prod_serv)
            assert in_catalog("C756_c_ClaveUnidad", line.clave_unidad)
        assert ticket.total == expected
        assert ticket.order_number.isdigit() and 6 <= len(ticket.order_number) <= 8
        assert ticket.ticket_number.isdigit() and 6 <= len(ticket.ticket_number) <= 10
        numbers.add((ticket.branch_id, ticket.ticket_number))
        assert now - timedelta(days=60) <= ticket.sold_at <= now
        in_month += ticket.sold_at >= month_start
    assert taxes == {("Tasa", Decimal("0.160000")), ("Tasa", Decimal("0.000000")), ("Exento", None)}
    assert len(numbers) == len(tickets)
    assert in_month >= len(tickets) // 4
    assert len({t.sold_at.date() for t in tickets}) > 30  # spread over the days


def test_tickets_command_prints_the_newest_open_tickets(app, demo):
    result = app.test_cli_runner().invoke(args=["demo", "tickets", "--count", "5"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 5
    newest = db.session.execute(
        select(Ticket, Branch)
        .join(Branch)
        .where(Ticket.status == TicketStatus.OPEN)
        .order_by(Ticket.sold_at.desc(), Ticket.id.desc())
        .limit(5)
    ).all()
    for record, (ticket, branch) in zip(records, newest, strict=True):
        assert set(record) == KEYS
        sold_at = datetime.fromisoformat(record["sold_at"])
        assert sold_at.utcoffset() == sold_at.astimezone(MEXICO_CITY).utcoffset()
        assert record == {
            "branch_code": branch.code,
            "branch_name": branch.name,
            "order_number": ticket.order_number,
            "ticket_number": ticket.ticket_number,
            "total": f"{ticket.total:.2f}",
            "sold_at": record["sold_at"],
        }
        assert sold_at == ticket.sold_at
    dates = [datetime.fromisoformat(r["sold_at"]) for r in records]
    assert dates == sorted(dates, reverse=True)


def test_tickets_command_prints_only_tickets_that_can_be_invoiced_now(app, demo):
    """Under a window of one day after the sale most of the 2,000 cannot be invoiced: the
    command lists exactly those that can, and says how many there were."""
    from webapp.fiscal.window import in_window, parse_policy

    demo.window_policy = "days_after:1"
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["demo", "tickets", "--count", "2000"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    now = datetime.now(UTC)
    policy = parse_policy("days_after:1")
    invoiceable = [
        t
        for t in db.session.scalars(select(Ticket).where(Ticket.status == TicketStatus.OPEN))
        if in_window(t.sold_at, now, policy)
    ]
    assert 0 < len(invoiceable) < 2000
    assert {r["ticket_number"] for r in records} == {t.ticket_number for t in invoiceable}
    assert f"{len(records)} open ticket(s) of 'demo' can be invoiced now" in result.stderr


def test_demo_invoices_twice_adds_more_instead_of_failing(app, demo):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "invoices", "--count", "20"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo", "invoices", "--count", "20"])
    assert second.exit_code == 0, second.output
    assert "it now lists 40" in second.output
    assert count(Invoice) == 40
    assert db.session.scalar(select(func.count(func.distinct(Invoice.uuid)))) == 40


def test_stored_csd_signs_as_the_issuer(demo):
    signer = issuer_signer(demo)
    assert signer.type is CertificateType.CSD
    assert signer.rfc == demo.rfc
    assert signer.legal_name == demo.legal_name
    assert len(signer.certificate_number) == 20 and signer.certificate_number.isdigit()
    assert signer.certificate_number == demo.csd_number
    assert "PRUEBA" in signer.issuer() and "SIN VALIDEZ" in signer.issuer()
    assert demo.csd_valid_from <= datetime.now(UTC) <= demo.csd_valid_to
    signature = signer.sign_sha256(b"||4.0|A|1|cadena original||")
    assert signer.verify_sha256(b"||4.0|A|1|cadena original||", base64.b64decode(signature))


def test_csd_key_and_password_are_not_stored_in_clear(app, demo):
    key = crypto.decrypt(demo.csd_key_encrypted)
    password = crypto.decrypt(demo.csd_password_encrypted)
    assert key not in demo.csd_key_encrypted and password not in demo.csd_password_encrypted
    with pytest.raises(ValueError):
        load_der_private_key(demo.csd_key_encrypted, password)
    # The decrypted pair is a SAT-style .key: encrypted PKCS#8 that opens with the password only.
    with pytest.raises(TypeError):
        load_der_private_key(key, None)
    Signer.load(certificate=demo.csd_certificate, key=key, password=password)


def test_stored_csd_needs_the_same_data_key(make_app, demo):
    with (
        make_app(SECRET_KEY="another-secret", DATA_KEY="another data key").app_context(),
        pytest.raises(crypto.DecryptionError),
    ):
        issuer_signer(demo)


def test_test_csd_is_refused_for_another_rfc():
    cer, key = make_test_csd("TDG150312K46", "TIENDAS DEMO LA GAVIOTA", "pw")
    other = Issuer(rfc="EKU9003173C9")
    with pytest.raises(CSDError, match="RFC"):
        store_csd(other, cer, key, "pw", crypto.cipher("k"))
    with pytest.raises(CSDError, match="password"):
        store_csd(Issuer(rfc="TDG150312K46"), cer, key, "wrong", crypto.cipher("k"))


def test_test_csd_shape():
    cer, key = make_test_csd("TDG150312K46", "TIENDAS DEMO LA GAVIOTA", "pw", branch="MATRIZ")
    signer = Signer.load(certificate=cer, key=key, password="pw")
    cert = signer.certificate.to_cryptography()
    assert cert.issuer.rfc4514_string().count(TEST_AUTHORITY) == 1
    assert len(cert.extensions) == 2
    assert cert.public_key().key_size == 2048
    assert cert.signature_hash_algorithm.name == "sha256"
    assert signer.branch_name == "MATRIZ"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 4 * 365


def test_lines_command_prints_lines_to_add_with_where_their_code_goes(app, telecom):
    result = app.test_cli_runner().invoke(args=["demo", "lines", "--count", "18"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(row) for row in result.output.splitlines()]
    assert len(lines) == 18
    mobiles = [line for line in lines if line["service_type"] == "MOVIL"]
    assert mobiles and all(line["number"].startswith("+52") for line in mobiles)
    # a mobile's code goes to the line itself; a home service's to its holder's mobile
    assert all(line["code_sent_to"] == line["number"] for line in mobiles)
    assert all(line["code_sent_to"].startswith("+52") for line in lines)
    assert {line["holder"] for line in lines} and all(line["account"] for line in lines)


def test_lines_command_names_a_missing_provider(app):
    result = app.test_cli_runner().invoke(args=["demo", "lines"])
    assert result.exit_code != 0
    assert "flask demo load" in result.output
