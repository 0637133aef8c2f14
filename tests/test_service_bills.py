"""Facturación → Ver Factura and Estado de cuenta (issue #15, point 6): the cycles of a held
line, each bill's invoice (PDF and XML, as every invoice download) or receipt, asking for the
invoice of a receipt, the statement as a page and a PDF, and the bills in the invoice panel,
all shown only to accounts holding a verified line of the bill's service account."""

from __future__ import annotations

import csv
import io
import re
import secrets
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from sqlalchemy import event, func, select

from tests.flows import PASSWORD, RECEPTOR, RFC, public_ids, sign_in, text_of, verified_account
from webapp.billing import terms
from webapp.cfdi.amounts import totals
from webapp.cfdi.cadena import find_tfd
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import issue
from webapp.models import (
    BillKind,
    Branch,
    CustomerProfile,
    DeliveryEmail,
    Invoice,
    InvoiceStatus,
    Issuer,
    LineHolder,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
    TicketLine,
)
from webapp.services.stamping import Result
from webapp.wiring import stamping

MX = ZoneInfo("America/Mexico_City")
CFDI = "{http://www.sat.gob.mx/cfd/4}"
FISCAL = "100000"  # the demo's account 0: its holder gave fiscal data (invoices)
PLAIN = "100001"  # account 1: no fiscal data (receipts)
OTHER = "100002"


# --- Bills as the billing run leaves them (built here: the run is not what is tested) ----------


def _months_back(day: date, n: int) -> date:
    month = day.month - 1 - n
    return date(day.year + month // 12, month % 12 + 1, min(day.day, 28))


def make_bill(
    number: str,
    cut: date,
    *,
    previous: str = "0.00",
    paid: str = "0.00",
    stamp: bool | None = None,
) -> str:
    """The bill of service account `number` whose corte is `cut` (period: cut's month): its
    sale as a ticket of the billing branch (one concepto per line, the plan's fee), and, for
    an account with fiscal data, its invoice stamped through the one road. Its public id.
    (In an app context.)"""
    session = db.session
    account = session.scalar(select(ServiceAccount).where(ServiceAccount.number == number))
    issuer = session.get(Issuer, account.issuer_id)
    branch = session.scalar(
        select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == "FACTURACION")
    )
    period = f"{cut.year:04d}-{cut.month:02d}"
    lines = [
        TicketLine(
            position=i,
            description=f"{line.plan.name} · {line.number}",
            clave_prod_serv=line.plan.clave_prod_serv,
            clave_unidad=line.plan.clave_unidad,
            quantity=Decimal("1"),
            unit_price=line.plan.monthly_fee,
            objeto_imp="02",
            tax_factor="Tasa",
            tax_rate=Decimal("0.160000"),
        )
        for i, line in enumerate(account.lines, start=1)
    ]
    ticket = Ticket(
        branch_id=branch.id,
        order_number=f"{number}-{period}",
        ticket_number=f"{number}{period.replace('-', '')}",
        sold_at=datetime.combine(cut, time(12), MX).astimezone(UTC),
        total=Decimal("0"),
        forma_pago="03",
        lines=lines,
    )
    ticket.total = totals(issue.ticket_lines(ticket)).total
    kind = BillKind.INVOICE if account.has_fiscal_data else BillKind.RECEIPT
    bill = ServiceBill(
        issuer_id=issuer.id,
        service_account_id=account.id,
        period=period,
        kind=kind,
        cut_date=cut,
        due_date=cut + timedelta(days=20),
        previous_balance=Decimal(previous),
        charges_total=ticket.total,
        payments_total=Decimal(paid),
        balance_due=Decimal(previous) - Decimal(paid) + ticket.total,
        ticket=ticket,
    )
    session.add(bill)
    session.commit()
    if stamp if stamp is not None else kind is BillKind.INVOICE:
        receptor = Receptor(
            account.fiscal_rfc,
            account.fiscal_name,
            account.fiscal_cp,
            account.fiscal_regimen,
            account.fiscal_uso,
        )
        request = issue.Request(
            branch.id, [ticket.id], receptor, "03", account.email, secrets.token_hex(8)
        )
        outcome = stamping().issue(session, request, issuer, datetime.now(UTC))
        assert outcome.result is Result.STAMPED, outcome
        outcome.invoice.service_account_id = account.id
        session.commit()
    return bill.public_id


def hold(account_id: int, number: str) -> None:
    """`account_id` proved it holds the first line of service account `number`."""
    line_id = db.session.scalar(
        select(ServiceLine.id)
        .join(ServiceAccount, ServiceAccount.id == ServiceLine.service_account_id)
        .where(ServiceAccount.number == number)
        .order_by(ServiceLine.id)
        .limit(1)
    )
    db.session.add(LineHolder(account_id=account_id, line_id=line_id))
    db.session.commit()


def customer(app, telecom, rfc: str, email: str, *holds: str) -> int:
    """A verified account that accepted the issuer's terms and holds lines of `holds`."""
    with app.app_context():
        account_id = verified_account(rfc, email)
        current = terms.current(db.session, telecom["issuer_id"])
        terms.accept(db.session, account_id, current, datetime.now(UTC))
        db.session.commit()
        for number in holds:
            hold(account_id, number)
    return account_id


def signed_in(app, email: str):
    client = app.test_client()
    assert sign_in(client, email, PASSWORD).status_code == 303
    return client


def bill_row(public_id: str) -> ServiceBill:
    return db.session.scalar(select(ServiceBill).where(ServiceBill.public_id == public_id))


def invoice_of(public_id: str) -> Invoice | None:
    bill = bill_row(public_id)
    return db.session.scalar(
        select(Invoice).where(
            Invoice.service_account_id == bill.service_account_id,
            Invoice.tickets.any(Ticket.id == bill.ticket_id),
            Invoice.is_global.is_(False),
        )
    )


@pytest.fixture
def today():
    return datetime.now(MX).date()


@pytest.fixture
def billed(app, telecom, today):
    """Three cycles of the fiscal account (the last two stamped as invoices), two of the
    plain one (receipts), one of another account; Ingrid holds lines of the first two."""
    with app.app_context():
        bills = {
            "fiscal": [
                make_bill(FISCAL, _months_back(today, 2), stamp=False),
                make_bill(FISCAL, _months_back(today, 1), previous="200.00", paid="200.00"),
                make_bill(FISCAL, today - timedelta(days=1)),
            ],
            "plain": [
                make_bill(PLAIN, _months_back(today, 1)),
                make_bill(PLAIN, today - timedelta(days=1), previous="100.00", paid="40.00"),
            ],
            "other": [make_bill(OTHER, today - timedelta(days=1))],
        }
    ingrid = customer(app, telecom, RFC, RECEPTOR["email"], FISCAL, PLAIN)
    return {"bills": bills, "ingrid": ingrid, "client": signed_in(app, RECEPTOR["email"])}


def _slug(telecom) -> str:
    return f"/servicios/{telecom['slug']}"


# --- Facturación → Ver Factura -----------------------------------------------------------------


def test_the_cycles_of_a_held_line_are_listed_by_month(app, telecom, billed, today):
    client = billed["client"]
    r = client.get(f"{_slug(telecom)}/facturacion")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Ver Factura" in html
    # The first held line is picked: the fiscal account's three cycles, newest first.
    listed = re.findall(r"/facturacion/([\w-]+)\"", html)
    assert listed == billed["bills"]["fiscal"][::-1]
    cut = today - timedelta(days=1)
    assert f"corte {cut:%d/%m/%Y}" in html
    # The other held account, by its number or by its line.
    with app.app_context():
        line_id = db.session.scalar(
            select(LineHolder.line_id)
            .join(ServiceLine, ServiceLine.id == LineHolder.line_id)
            .join(ServiceAccount, ServiceAccount.id == ServiceLine.service_account_id)
            .where(LineHolder.account_id == billed["ingrid"], ServiceAccount.number == PLAIN)
        )
    for value in (PLAIN, str(line_id)):
        html = client.get(f"{_slug(telecom)}/facturacion?linea={value}").get_data(as_text=True)
        assert re.findall(r"/facturacion/([\w-]+)\"", html) == billed["bills"]["plain"][::-1]
        assert f'value="{line_id}" selected' in html
    # htmx swaps the cycles only.
    r = client.get(
        f"{_slug(telecom)}/facturacion?linea={PLAIN}",
        headers={"HX-Request": "true", "HX-Target": "ciclos"},
    )
    body = r.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="ciclos"') and "<html" not in body
    assert "HX-Request" in r.headers["Vary"]


def test_a_line_not_held_lists_nothing(app, telecom, billed):
    client = billed["client"]
    with app.app_context():
        other_line = db.session.scalar(
            select(ServiceLine.id)
            .join(ServiceAccount, ServiceAccount.id == ServiceLine.service_account_id)
            .where(ServiceAccount.number == OTHER)
        )
    for value in (OTHER, str(other_line), "999999999", "x" * 500, "'; drop table x; --"):
        r = client.get(f"{_slug(telecom)}/facturacion", query_string={"linea": value})
        html = r.get_data(as_text=True)
        assert r.status_code == 404 and "no está en su cuenta" in html
        assert billed["bills"]["other"][0] not in html


def test_ver_factura_downloads_the_stamped_invoice(app, telecom, billed):
    client = billed["client"]
    public_id = billed["bills"]["fiscal"][-1]
    html = client.get(f"{_slug(telecom)}/facturacion/{public_id}").get_data(as_text=True)
    assert "Descargar PDF" in html and "Descargar XML" in html and "Conceptos" in html
    with app.app_context():
        invoice = invoice_of(public_id)
        uuid, xml = invoice.uuid, invoice.xml
        name = f"IIA040805DZ4_{invoice.serie}{invoice.folio}_{uuid}"
    assert uuid in html
    r = client.get(f"{_slug(telecom)}/facturacion/{public_id}.xml")
    assert r.status_code == 200 and r.mimetype == "application/xml" and r.data == xml
    assert r.headers["Cache-Control"] == "private, no-store"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{name}.xml"'
    root = etree.fromstring(r.data)
    assert root.tag == f"{CFDI}Comprobante" and find_tfd(root).get("UUID") == uuid
    assert root.find(f"{CFDI}Receptor").get("Rfc") == "XOJI740919U48"
    r = client.get(f"{_slug(telecom)}/facturacion/{public_id}.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF") and uuid in text_of(r.data)
    assert uuid in r.headers["Content-Disposition"]
    # A cycle whose invoice is not made yet has no files.
    pending = billed["bills"]["fiscal"][0]
    html = client.get(f"{_slug(telecom)}/facturacion/{pending}").get_data(as_text=True)
    assert "aún no está disponible" in html
    assert client.get(f"{_slug(telecom)}/facturacion/{pending}.pdf").status_code == 404


def test_a_receipt_prints_as_a_receipt(app, telecom, billed):
    client = billed["client"]
    public_id = billed["bills"]["plain"][-1]
    html = client.get(f"{_slug(telecom)}/facturacion/{public_id}").get_data(as_text=True)
    assert "Descargar recibo (PDF)" in html
    assert client.get(f"{_slug(telecom)}/facturacion/{public_id}.xml").status_code == 404
    r = client.get(f"{_slug(telecom)}/facturacion/{public_id}/recibo.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    assert r.headers["Cache-Control"] == "private, no-store"
    text = text_of(r.data)
    assert "Recibo — no es un comprobante fiscal" in text and PLAIN in text
    with app.app_context():
        bill = bill_row(public_id)
        assert f"{bill.balance_due:,.2f}" in text
    # An invoice's bill has no receipt.
    fiscal = billed["bills"]["fiscal"][-1]
    assert client.get(f"{_slug(telecom)}/facturacion/{fiscal}/recibo.pdf").status_code == 404


def _save_profile(app, account_id: int) -> None:
    with app.app_context():
        db.session.add(
            CustomerProfile(
                account_id=account_id,
                rfc=RFC,
                name=RECEPTOR["nombre"],
                cp=RECEPTOR["cp"],
                regimen_fiscal=RECEPTOR["regimen"],
                uso_cfdi=RECEPTOR["uso_cfdi"],
                emails=[DeliveryEmail(email=RECEPTOR["email"])],
            )
        )
        db.session.commit()


def _key(html: str) -> str:
    return re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)


def test_solicitar_factura_within_the_window(app, telecom, billed):
    client = billed["client"]
    public_id = billed["bills"]["plain"][-1]
    url = f"{_slug(telecom)}/facturacion/{public_id}"
    html = client.get(url).get_data(as_text=True)
    assert "Solicitar factura" in html and "guarde primero sus datos fiscales" in html
    assert 'name="key"' not in html  # no form without the fiscal data
    _save_profile(app, billed["ingrid"])
    html = client.get(url).get_data(as_text=True)
    assert "INGRID XODAR JIMENEZ" in html
    key = _key(html)
    r = client.post(f"{url}/factura", data={"key": key})
    assert r.status_code == 303 and r.headers["Location"].startswith(url)
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Su factura está lista" in html and "Descargar XML" in html
    with app.app_context():
        invoice = invoice_of(public_id)
        assert invoice.status is InvoiceStatus.STAMPED
        assert invoice.receptor_rfc == RFC and invoice.account_id == billed["ingrid"]
        uuid, account_id = invoice.uuid, invoice.service_account_id
        assert account_id == bill_row(public_id).service_account_id
        count = db.session.scalar(select(func.count()).select_from(Invoice))
    root = etree.fromstring(client.get(f"{url}.xml").data)
    assert find_tfd(root).get("UUID") == uuid
    # The same press again makes nothing more.
    assert client.post(f"{url}/factura", data={"key": key}).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == count
    # It is in the panel.
    assert invoice_public_id(app, uuid) in public_ids(client.get("/facturas/").get_data(True))


def invoice_public_id(app, uuid: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Invoice.public_id).where(Invoice.uuid == uuid))


def test_solicitar_factura_outside_the_window(app, telecom, billed):
    client = billed["client"]
    _save_profile(app, billed["ingrid"])
    old = billed["bills"]["plain"][0]  # a month ago: the demo's window is 30 days
    with app.app_context():
        bill_row(old).ticket.sold_at = datetime.now(UTC) - timedelta(days=45)
        db.session.commit()
    url = f"{_slug(telecom)}/facturacion/{old}"
    html = client.get(url).get_data(as_text=True)
    assert "El plazo para solicitar la factura de este corte terminó" in html
    r = client.post(f"{url}/factura", data={"key": "k" * 24})
    assert r.status_code == 422 and "El plazo" in r.get_data(as_text=True)
    with app.app_context():
        assert invoice_of(old) is None
    # A hostile key is refused before anything is tried.
    fresh = billed["bills"]["plain"][-1]
    for key in ("", "short", "<script>" * 5, "k" * 65):
        r = client.post(f"{_slug(telecom)}/facturacion/{fresh}/factura", data={"key": key})
        assert r.status_code == 400


def test_solicitar_factura_when_the_provider_cannot_sign(app, telecom, billed):
    """Its CSD unusable: a clear message, nothing reserved, and the button to try again."""
    client = billed["client"]
    _save_profile(app, billed["ingrid"])
    with app.app_context():
        db.session.get(Issuer, telecom["issuer_id"]).csd_key_encrypted = None
        db.session.commit()
    public_id = billed["bills"]["plain"][-1]
    url = f"{_slug(telecom)}/facturacion/{public_id}"
    key = _key(client.get(url).get_data(as_text=True))
    r = client.post(f"{url}/factura", data={"key": key})
    html = r.get_data(as_text=True)
    assert r.status_code == 503 and "no puede emitir facturas en este momento" in html
    assert _key(html) != key and "Solicitar factura" in html
    with app.app_context():
        assert invoice_of(public_id) is None


# --- Estado de cuenta -------------------------------------------------------------------------


def test_the_statement_and_its_12_cycles(app, telecom, today):
    with app.app_context():
        account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.number == PLAIN))
        made = [make_bill(PLAIN, _months_back(today, n)) for n in range(14, 0, -1)]
        last = make_bill(PLAIN, today - timedelta(days=2), previous="350.50", paid="300.00")
        previous_cut = _months_back(today, 1)
        # Payments of the newest cycle (after the previous corte), and one before it.
        for days, amount in ((1, "100.00"), (3, "200.00")):
            db.session.add(
                Payment(
                    issuer_id=telecom["issuer_id"],
                    service_account_id=account.id,
                    external_id=f"P{days}",
                    amount=Decimal(amount),
                    received_at=datetime.combine(previous_cut + timedelta(days=days), time(10), MX),
                    reference=f"REF-{days}",
                )
            )
        db.session.add(
            Payment(
                issuer_id=telecom["issuer_id"],
                service_account_id=account.id,
                external_id="P-old",
                amount=Decimal("77.77"),
                received_at=datetime.combine(previous_cut, time(9), MX),
                reference="REF-OLD",
            )
        )
        db.session.commit()
        bill = bill_row(last)
        charges, due = bill.charges_total, bill.balance_due
    customer(app, telecom, RFC, RECEPTOR["email"], PLAIN)
    client = signed_in(app, RECEPTOR["email"])
    r = client.get(f"{_slug(telecom)}/estado-de-cuenta")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    for figure in ("$350.50", f"${charges:,.2f}", "$300.00", f"${due:,.2f}"):
        assert figure in html, figure
    assert "REF-1" in html and "REF-3" in html and "REF-OLD" not in html
    history = re.findall(r"/facturacion/([\w-]+)\" aria-label", html)
    assert history == [last, *made[::-1]][:12]
    r = client.get(f"{_slug(telecom)}/estado-de-cuenta.pdf?cuenta={PLAIN}")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    assert r.headers["Content-Disposition"].startswith('attachment; filename="estado-de-cuenta_')
    text = text_of(r.data)
    assert "350.50" in text and f"{due:,.2f}" in text and "REF-3" in text


# --- Isolation ------------------------------------------------------------------------------------


def test_someone_else_gets_404_everywhere(app, telecom, billed):
    customer(app, telecom, "GODE561231GR8", "pedro@example.com", OTHER)
    pedro = signed_in(app, "pedro@example.com")
    slug = _slug(telecom)
    for public_id in billed["bills"]["fiscal"] + billed["bills"]["plain"]:
        for url in ("", ".pdf", ".xml", "/recibo.pdf"):
            assert pedro.get(f"{slug}/facturacion/{public_id}{url}").status_code == 404
        r = pedro.post(f"{slug}/facturacion/{public_id}/factura", data={"key": "k" * 24})
        assert r.status_code == 404
    for number in (FISCAL, PLAIN, "nope", "%00", "1" * 100):
        for url in ("/estado-de-cuenta", "/estado-de-cuenta.pdf"):
            r = pedro.get(f"{slug}{url}", query_string={"cuenta": number})
            assert r.status_code == 404
    # His own, and only his, are listed.
    html = pedro.get(f"{slug}/facturacion").get_data(as_text=True)
    assert re.findall(r"/facturacion/([\w-]+)\"", html) == billed["bills"]["other"]
    # Unknown ids, and ids of no shape, read the same.
    for public_id in ("nope", "x" * 40, "..%2F..", billed["bills"]["other"][0] + "x"):
        assert pedro.get(f"{slug}/facturacion/{public_id}").status_code == 404
    # Signed out: to the sign-in page.
    anonymous = app.test_client()
    r = anonymous.get(f"{slug}/facturacion/{billed['bills']['other'][0]}.xml")
    assert r.status_code == 303 and "/cuenta/entrar" in r.headers["Location"]


def _panel_uuids(client, url="/facturas/exportar.csv") -> set[str]:
    rows = list(csv.reader(io.StringIO(client.get(url).data.decode("utf-8-sig"))))
    return {row[5] for row in rows[1:]}


def test_bills_in_the_panel_only_for_holders(app, telecom, billed):
    """Invoices of a held line's service account are listed, filtered, downloaded and
    exported like the account's own; an account holding no line of it never sees them."""
    with app.app_context():
        invoices = {
            i.public_id: i.uuid
            for i in db.session.scalars(
                select(Invoice).where(Invoice.service_account_id.is_not(None))
            )
        }
        other = invoice_of(billed["bills"]["other"][0])
        theirs = {i: u for i, u in invoices.items() if i != getattr(other, "public_id", None)}
    assert len(theirs) == 2  # the fiscal account's two stamped cycles
    ingrid = billed["client"]
    html = ingrid.get("/facturas/").get_data(as_text=True)
    assert set(public_ids(html)) == set(theirs)
    assert "INDISTRIA ILUMINADORA DE ALMACENES" in html
    assert _panel_uuids(ingrid) == set(theirs.values())
    # Filters and search: by issuer (the telecom is offered), by UUID prefix.
    r = ingrid.get(f"/facturas/?emisor={telecom['issuer_id']}")
    assert r.status_code == 200 and set(public_ids(r.get_data(as_text=True))) == set(theirs)
    public_id, uuid = next(iter(theirs.items()))
    html = ingrid.get(f"/facturas/?q={uuid[:8]}").get_data(as_text=True)
    assert public_ids(html) == [public_id]
    for ext in ("xml", "pdf"):
        assert ingrid.get(f"/facturas/{public_id}.{ext}").status_code == 200
    r = ingrid.post("/facturas/zip", data={"f": list(theirs)})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        assert len(archive.namelist()) == 4  # XML and PDF of each
    # Someone holding another account's line: none of them, anywhere.
    customer(app, telecom, "GODE561231GR8", "pedro@example.com", OTHER)
    pedro = signed_in(app, "pedro@example.com")
    html = pedro.get("/facturas/").get_data(as_text=True)
    assert not set(public_ids(html)) & set(theirs)
    assert not _panel_uuids(pedro) & set(theirs.values())
    for public_id in theirs:
        for ext in ("xml", "pdf"):
            assert pedro.get(f"/facturas/{public_id}.{ext}").status_code == 404
        assert pedro.get(f"/facturas/{public_id}/reenviar").status_code == 404
    assert pedro.post("/facturas/zip", data={"f": list(theirs)}).status_code == 404
    # A holder who removes the line stops seeing them.
    with app.app_context():
        for holder in db.session.scalars(
            select(LineHolder).where(LineHolder.account_id == billed["ingrid"])
        ):
            db.session.delete(holder)
        db.session.commit()
    assert not set(public_ids(ingrid.get("/facturas/").get_data(as_text=True))) & set(theirs)
    assert ingrid.get(f"/facturas/{public_id}.xml").status_code == 404


def test_the_panel_reads_the_bills_by_their_own_index(app, telecom, billed):
    """The bills are a second query on ix_invoice_service_account_id, not an OR that would
    take the account's list off its indexes."""
    seen: list[tuple[str, object]] = []

    def listen(conn, cursor, statement, parameters, *args) -> None:
        seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        billed["client"].get(f"/facturas/?emisor={telecom['issuer_id']}&estado=vigente")
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    keys = [(s, p) for s, p in seen if s.startswith("SELECT invoice.fecha, invoice.id")]
    assert len(keys) == 2 and not any(" OR " in s for s, _ in keys), keys
    [(bills, parameters)] = [(s, p) for s, p in keys if "invoice.service_account_id IN" in s]
    if engine.dialect.name == "sqlite":  # PostgreSQL's choice follows its statistics
        with app.app_context():
            cursor = db.session.connection().connection.driver_connection.cursor()
            plan = " ".join(
                row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + bills, parameters)
            )
        assert "USING INDEX ix_invoice_service_account_id" in plan, plan


def test_hostile_query_strings_are_never_a_500(app, telecom, billed):
    client = billed["client"]
    slug = _slug(telecom)
    hostile = ["", " ", "0", "-1", "1e9", "9" * 40, "\x00", "%", "<b>", "../../", "á" * 300]
    for value in hostile:
        for url, name in (
            ("/facturacion", "linea"),
            ("/estado-de-cuenta", "cuenta"),
            ("/estado-de-cuenta.pdf", "cuenta"),
        ):
            r = client.get(f"{slug}{url}", query_string={name: value})
            assert r.status_code < 500, (url, value)
    assert client.get(f"{slug}/facturacion/{billed['bills']['plain'][0]}.exe").status_code == 404
    assert client.get("/servicios/no-existe/facturacion").status_code == 404
    assert client.get("/servicios/demo/facturacion").status_code == 404
