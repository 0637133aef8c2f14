"""The Ecuadorian demo (webapp.demo.ecuador): a telecom provider and a shop with SRI data, their
test .p12 certificates, the shop's tickets in USD, the `flask demo` commands on them, and six
months of bills made by the billing run as SRI facturas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from stdnum.ec import ci, ruc

from webapp import crypto
from webapp.demo import ecuador
from webapp.extensions import db
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    LineKind,
    Plan,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    ServiceType,
    Ticket,
    TicketStatus,
)
from webapp.sms.outbox import normalise_number
from webapp.sri import catalogs
from webapp.sri import factura as sri
from webapp.sri.keystore import signing_key
from webapp.sri.testp12 import TEST_AUTHORITY

ACCOUNTS, LINES, TICKETS = 5, 8, 40


@pytest.fixture(scope="module")
def p12s() -> dict[str, tuple[bytes, str]]:
    """Both issuers' test .p12 files, made once (an RSA key takes a visible moment)."""
    now = datetime.now(UTC)
    return {
        ecuador.SERVICES_RUC: ecuador.new_p12(
            ecuador.SERVICES_RUC, ecuador.SERVICES_LEGAL_NAME, now
        ),
        ecuador.SHOP_RUC: ecuador.new_p12(ecuador.SHOP_RUC, ecuador.SHOP_LEGAL_NAME, now),
    }


def load(app, p12s) -> ecuador.EcuadorDemo:
    with app.app_context():
        return ecuador.load_ecuador_demo(
            db.session,
            crypto.cipher_from_config(app.config),
            accounts=ACCOUNTS,
            lines=LINES,
            tickets=TICKETS,
            p12s=p12s,
        )


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def andes(app, p12s):
    loaded = load(app, p12s)
    assert loaded.created
    return loaded


def test_load_creates_both_issuers_once(app, andes, p12s):
    assert (andes.accounts, andes.lines, andes.tickets) == (ACCOUNTS, LINES, TICKETS)
    with app.app_context():
        before = {m.__name__: count(m) for m in (Issuer, Branch, ServiceLine, Ticket, Plan)}
    again = load(app, p12s)
    assert not again.created
    assert (again.accounts, again.lines, again.tickets) == (ACCOUNTS, LINES, TICKETS)
    with app.app_context():
        assert {m.__name__: count(m) for m in (Issuer, Branch, ServiceLine, Ticket, Plan)} == before
        assert before["Issuer"] == 2


def test_issuers_are_ecuadorian_with_valid_rucs_and_series(app, andes):
    with app.app_context():
        telecom = db.session.scalar(select(Issuer).where(Issuer.slug == "andina-demo"))
        shop = db.session.scalar(select(Issuer).where(Issuer.slug == "quito-demo"))
        assert (telecom.kind, telecom.country, shop.kind, shop.country) == (
            "services",
            "EC",
            "retail",
            "EC",
        )
        for issuer in (telecom, shop):
            assert ruc.is_valid(issuer.rfc) and issuer.rfc.endswith("001")
            assert catalogs.validate_identification(catalogs.RUC, issuer.rfc) == issuer.rfc
            assert (issuer.regimen_fiscal, issuer.cp) == ("", "")
            assert issuer.legal_name and issuer.trade_name and issuer.head_office_address
            assert issuer.csd_certificate is None  # SRI signs with the .p12, not a CSD
        assert telecom.rfc[2] == "9" and telecom.keeps_accounts  # a sociedad
        assert shop.rfc[2] < "6" and ci.is_valid(shop.rfc[:10])  # a persona natural
        assert shop.rimpe in catalogs.RIMPE
        for code in (telecom.formas_pago + "," + shop.formas_pago).split(","):
            assert code in catalogs.FORMAS_PAGO
        billing = db.session.scalars(select(Branch).where(Branch.issuer_id == telecom.id)).all()
        assert [(b.code, b.estab, b.pto_emi) for b in billing] == [("FACTURACION", "001", "001")]
        branches = db.session.scalars(
            select(Branch).where(Branch.issuer_id == shop.id).order_by(Branch.estab)
        ).all()
        assert [(b.estab, b.pto_emi, b.cp) for b in branches] == [
            ("001", "001", ""),
            ("002", "001", ""),
        ]
        assert "Quito" in branches[0].address and "Guayaquil" in branches[1].address


def test_each_p12_opens_for_its_ruc(app, andes):
    with app.app_context():
        fernet = crypto.cipher_from_config(app.config)
        for slug in ("andina-demo", "quito-demo"):
            issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
            key = signing_key(issuer, fernet)
            assert key.ruc == issuer.rfc
            assert key.issuer == TEST_AUTHORITY  # says what it is: no fiscal validity
            assert issuer.p12_subject == key.holder == issuer.legal_name
            assert key.valid_from <= datetime.now(UTC) < key.valid_to == issuer.p12_valid_to


def test_holders_lines_and_plans(app, andes):
    with app.app_context():
        telecom = db.session.scalar(select(Issuer).where(Issuer.slug == "andina-demo"))
        accounts = db.session.scalars(
            select(ServiceAccount).where(ServiceAccount.issuer_id == telecom.id)
        ).all()
        assert len(accounts) == ACCOUNTS
        with_ruc = [a for a in accounts if a.fiscal_rfc]
        assert 0 < len(with_ruc) < ACCOUNTS
        for account in accounts:
            assert ci.is_valid(account.holder_id), account.holder_id
            assert normalise_number(account.contact_mobile) == account.contact_mobile
            assert account.contact_mobile.startswith("+5939")
        for account in with_ruc:
            assert ruc.is_valid(account.fiscal_rfc) and account.fiscal_name
            assert not (account.fiscal_cp or account.fiscal_regimen or account.fiscal_uso)
        assert len({a.holder_id for a in accounts}) == ACCOUNTS
        plans = db.session.scalars(select(Plan).where(Plan.issuer_id == telecom.id)).all()
        for plan in plans:  # USD, IVA 15 %: the price with tax is a round figure
            assert plan.tax_rate == Decimal("0.15")
            with_tax = sri.money(plan.monthly_fee) + sri.money(plan.monthly_fee * Decimal("0.15"))
            assert with_tax == with_tax.to_integral_value(), plan.code
        lines = db.session.execute(
            select(ServiceLine, ServiceType)
            .join(ServiceType, ServiceLine.service_type_id == ServiceType.id)
            .where(ServiceLine.issuer_id == telecom.id)
        ).all()
        assert len(lines) == LINES
        for line, service_type in lines:
            if service_type.line_kind is LineKind.PHONE:
                assert normalise_number(line.number) == line.number


def test_tickets_in_usd_with_iva_15_and_0(app, andes):
    with app.app_context():
        shop = db.session.scalar(select(Issuer).where(Issuer.slug == "quito-demo"))
        tickets = db.session.scalars(
            select(Ticket)
            .join(Branch)
            .where(Branch.issuer_id == shop.id)
            .options(selectinload(Ticket.lines))
        ).all()
        assert len(tickets) == TICKETS
        rates, branches, numbers = set(), set(), set()
        for ticket in tickets:
            assert ticket.currency == "USD" and ticket.status is TicketStatus.OPEN
            lineas = []
            for line in ticket.lines:
                assert (line.objeto_imp, line.tax_factor) == ("02", "Tasa")
                rates.add(line.tax_rate)
                lineas.append(
                    sri.Linea(
                        codigo_principal=line.clave_prod_serv,
                        descripcion=line.description,
                        cantidad=line.quantity,
                        precio_unitario=line.unit_price,
                        codigo_porcentaje=catalogs.IVA_15 if line.tax_rate else catalogs.IVA_0,
                    )
                )
            # The printed total is the SRI factura's importe total.
            assert sri.totals(lineas).importe_total == ticket.total
            branches.add(ticket.branch_id)
            numbers.add((ticket.branch_id, ticket.ticket_number))
        assert rates == {Decimal("0.15"), Decimal("0")}
        assert len(branches) == 2 and len(numbers) == TICKETS


def test_tickets_are_the_same_on_every_load_but_for_their_dates():
    early = ecuador.generate_tickets(datetime(2026, 3, 10, 15, tzinfo=UTC), 25)
    late = ecuador.generate_tickets(datetime(2026, 11, 28, 23, tzinfo=UTC), 25)
    key = [(t.branch, t.order_number, t.ticket_number, t.total) for t in early]
    assert key == [(t.branch, t.order_number, t.ticket_number, t.total) for t in late]
    assert all(t.sold_at <= datetime(2026, 3, 10, 15, tzinfo=UTC) for t in early)


def test_demo_commands_print_its_tickets_and_lines(app, andes):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "tickets", "--slug", "quito-demo", "--count", "3"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert printed and len(printed) <= 3
    for ticket in printed:
        assert ticket["branch_code"] in ("QUITO", "GUAYAQUIL")
        assert ticket["sold_at"].endswith("-05:00")  # Ecuador's time
        assert Decimal(ticket["total"]) > 0
    result = runner.invoke(args=["demo", "lines", "--slug", "andina-demo", "--count", "3"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3
    assert lines[0]["number"].startswith("+5939") and lines[0]["code_sent_to"] == lines[0]["number"]
    assert lines[0]["fiscal_data"] is True  # the first holder gave their RUC


def test_six_months_of_bills_are_authorised_sri_facturas(app, andes):
    from webapp.billing.documents import DOCUMENTS

    if "EC" not in DOCUMENTS:
        pytest.skip("the billing run has no SRI document yet (webapp.billing.documents)")
    with app.app_context():
        stamping = app.extensions["stamping"]
        bills = ecuador.load_ecuador_history(db.session, stamping)
        assert bills == 6 * ACCOUNTS
        assert ecuador.load_ecuador_history(db.session, stamping) == bills  # idempotent
        telecom = db.session.scalar(select(Issuer).where(Issuer.slug == "andina-demo"))
        periods = db.session.scalars(
            select(ServiceBill.period).where(ServiceBill.issuer_id == telecom.id).distinct()
        ).all()
        assert len(periods) == 6
        invoices = db.session.scalars(select(Invoice).where(Invoice.issuer_id == telecom.id)).all()
        assert invoices
        for invoice in invoices:
            assert invoice.status is InvoiceStatus.STAMPED
            assert invoice.authority_state == "authorised"
            assert invoice.currency == "USD" and invoice.serie == "001-001"
            assert invoice.uuid == invoice.access_key and len(invoice.access_key) == 49
        assert sorted(i.folio for i in invoices) == list(range(1, len(invoices) + 1))
        # Every bill is a factura: to the RUC the holder gave, else to their cédula.
        assert len(invoices) == bills
        holders = {
            a.id: a
            for a in db.session.scalars(
                select(ServiceAccount).where(ServiceAccount.issuer_id == telecom.id)
            )
        }
        for invoice in invoices:
            account = holders[invoice.service_account_id]
            if account.fiscal_rfc:
                assert (invoice.receptor_id_type, invoice.receptor_rfc) == (
                    catalogs.RUC,
                    account.fiscal_rfc,
                )
            else:
                assert (invoice.receptor_id_type, invoice.receptor_rfc) == (
                    catalogs.CEDULA,
                    account.holder_id,
                )


def test_portal_pages_of_both_issuers_answer(app, client, andes):
    assert client.get("/servicios/andina-demo/").status_code == 200
    page = client.get("/facturar/quito-demo/")
    assert page.status_code == 200
    assert "Local Quito" in page.get_data(as_text=True)
