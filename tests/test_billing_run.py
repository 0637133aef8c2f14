"""The billing run (#15 point 5): one bill per service account and period, its amounts, the
invoice of a holder with fiscal data (stamped, emailed) and the receipt of the others (into
the factura global), reruns and two runs at once that add nothing, a run killed with SIGKILL
halfway and run again, the command's errors, and the back office's button and progress bar."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select

from tests.flows import wait_until
from webapp.billing import run as billing
from webapp.billing.documents import bill_key
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.issuing import global_invoice as gi
from webapp.models import (
    BillingRun,
    BillKind,
    Branch,
    Charge,
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    StaffRole,
    Ticket,
    TicketStatus,
)

ROOT = Path(__file__).resolve().parent.parent
CFDI = "{http://www.sat.gob.mx/cfd/4}"
CENT = Decimal("0.01")


def _period(months_back: int) -> str:
    today = datetime.now(UTC).astimezone(MEXICO_CITY).date()
    year, month = divmod(today.year * 12 + today.month - 1 - months_back, 12)
    return f"{year:04d}-{month + 1:02d}"


LAST, BEFORE = _period(1), _period(2)


def _run(app, period: str, **kwargs) -> billing.RunState:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "telcel-demo"))
        return billing.run(
            db.session, app.extensions["stamping"], issuer, period, datetime.now(UTC), **kwargs
        )


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _with_tax(amount: Decimal) -> Decimal:
    return amount + (amount * Decimal("0.16")).quantize(CENT, ROUND_HALF_UP)


def _expected_plans(account: ServiceAccount) -> Decimal:
    return sum(
        (_with_tax(line.plan.monthly_fee.quantize(CENT)) for line in account.lines), CENT * 0
    )


def _account(index: int) -> ServiceAccount:
    return db.session.scalar(
        select(ServiceAccount).where(ServiceAccount.number == f"{100000 + index}")
    )


def _bill(account: ServiceAccount, period: str) -> ServiceBill:
    return db.session.scalar(
        select(ServiceBill).where(
            ServiceBill.service_account_id == account.id, ServiceBill.period == period
        )
    )


def _assert_complete(app, period: str, accounts: int) -> None:
    """Exactly one bill per account and period, each with its ticket; every invoice-kind bill
    has one stamped invoice; no orphan ticket in the billing branch."""
    with app.app_context():
        per_account = db.session.execute(
            select(ServiceBill.service_account_id, func.count())
            .where(ServiceBill.period == period)
            .group_by(ServiceBill.service_account_id)
        ).all()
        assert len(per_account) == accounts
        assert {n for _, n in per_account} == {1}
        branch = db.session.scalar(select(Branch).where(Branch.code == billing.BILLING_BRANCH))
        tickets = _count(
            Ticket, Ticket.branch_id == branch.id, Ticket.ticket_number.like(f"{period}-%")
        )
        assert tickets == accounts
        for bill in db.session.scalars(
            select(ServiceBill).where(
                ServiceBill.period == period, ServiceBill.kind == BillKind.INVOICE
            )
        ):
            invoices = db.session.scalars(
                select(Invoice).where(Invoice.idempotency_key == bill_key(bill.id))
            ).all()
            assert [i.status for i in invoices] == [InvoiceStatus.STAMPED], bill.id
            assert bill.ticket.status is TicketStatus.INVOICED


# --- Amounts, documents, reruns -------------------------------------------------------------


def test_bills_amounts_invoice_and_receipt(app, telecom):
    first = _run(app, BEFORE)
    assert (first.total, first.done, first.failed, first.finished) == (12, 12, 0, True)
    with app.app_context():
        holder = _account(1)  # no fiscal data: a receipt
        previous = _bill(holder, BEFORE)
        cut = billing.cut_date(LAST, holder.billing_day)
        inside = datetime.combine(cut, time(12), MEXICO_CITY)
        issuer_id = holder.issuer_id
        db.session.add_all(
            [
                Payment(
                    issuer_id=issuer_id,
                    service_account_id=holder.id,
                    external_id="pay-1",
                    amount=Decimal("100.00"),
                    received_at=inside,
                    forma_pago="04",
                ),
                Payment(  # before the previous corte: that bill's payment, not this one's
                    issuer_id=issuer_id,
                    service_account_id=holder.id,
                    external_id="pay-0",
                    amount=Decimal("55.00"),
                    received_at=datetime.combine(previous.cut_date, time(9), MEXICO_CITY),
                ),
                Charge(
                    issuer_id=issuer_id,
                    service_account_id=holder.id,
                    external_id="ch-1",
                    period=LAST,
                    description="Datos adicionales 1 GB",
                    unit_price=Decimal("86.21"),
                ),
                Charge(  # of the month after: not on this bill
                    issuer_id=issuer_id,
                    service_account_id=holder.id,
                    external_id="ch-2",
                    period=_period(0),
                    description="Roaming",
                    unit_price=Decimal("10.00"),
                ),
            ]
        )
        db.session.commit()

    state = _run(app, LAST, batch_size=5)
    assert (state.total, state.done, state.failed) == (12, 12, 0)

    with app.app_context():
        holder = _account(1)
        bill = _bill(holder, LAST)
        previous = _bill(holder, BEFORE)
        charges = _expected_plans(holder) + _with_tax(Decimal("86.21"))
        assert bill.kind is BillKind.RECEIPT
        assert bill.cut_date == billing.cut_date(LAST, holder.billing_day)
        assert bill.due_date == bill.cut_date + timedelta(days=15)
        assert bill.charges_total == charges == bill.ticket.total
        assert bill.previous_balance == previous.balance_due == _expected_plans(holder)
        assert bill.payments_total == Decimal("100.00")
        assert bill.balance_due == previous.balance_due + charges - Decimal("100.00")
        # The ticket: one line per line's plan, then the charge; open for the factura global.
        ticket = bill.ticket
        assert ticket.status is TicketStatus.OPEN
        assert ticket.ticket_number == f"{LAST}-{holder.number}"
        assert ticket.sold_at.astimezone(MEXICO_CITY).date() == bill.cut_date
        assert ticket.forma_pago == "04"  # the form of the latest payment
        descriptions = [line.description for line in ticket.lines]
        first_line = holder.lines[0]
        number = first_line.number
        assert descriptions[0] == (
            f"{first_line.plan.name} — línea +52 {number[3:5]} {number[5:9]} {number[9:]}, "
            f"periodo {LAST}"
        )
        assert descriptions[-1] == "Datos adicionales 1 GB"
        billed = {c.external_id: c.bill_id for c in db.session.scalars(select(Charge))}
        assert billed == {"ch-1": bill.id, "ch-2": None}

        # One holder in ten gave fiscal data: stamped as their invoice, emailed.
        fiscal = _account(0)
        bill = _bill(fiscal, LAST)
        assert bill.kind is BillKind.INVOICE
        assert bill.charges_total == _expected_plans(fiscal)
        invoice = db.session.scalar(
            select(Invoice).where(Invoice.idempotency_key == bill_key(bill.id))
        )
        assert invoice.status is InvoiceStatus.STAMPED and invoice.uuid
        assert invoice.service_account_id == fiscal.id and invoice.account_id is None
        assert invoice.total == bill.charges_total
        receptor = etree.fromstring(invoice.xml).find(f"{CFDI}Receptor")
        assert receptor.get("Rfc") == fiscal.fiscal_rfc == "XOJI740919U48"
        assert receptor.get("Nombre") == fiscal.fiscal_name
        assert receptor.get("DomicilioFiscalReceptor") == fiscal.fiscal_cp
        assert receptor.get("UsoCFDI") == fiscal.fiscal_uso
        mails = _count(MailMessage, MailMessage.to_addrs == fiscal.email)
        assert mails == 2  # this bill's and the month before's

        # The receipts' sales are what the month's factura global takes.
        branch = bill.ticket.branch
        month = gi.period_of(gi.MONTHLY, bill.cut_date)
        receipts = _count(
            ServiceBill, ServiceBill.period == LAST, ServiceBill.kind == BillKind.RECEIPT
        )
        assert receipts == 10
        assert gi.preview(db.session, branch, month).tickets == receipts
        invoices_before = _count(Invoice)
        tickets_before = _count(Ticket)

    # Run again: nothing is added, nothing billed twice.
    again = _run(app, LAST)
    assert (again.total, again.done, again.failed) == (12, 12, 0)
    with app.app_context():
        assert _count(ServiceBill, ServiceBill.period == LAST) == 12
        assert _count(Invoice) == invoices_before
        assert _count(Ticket) == tickets_before
        assert _count(MailMessage, MailMessage.to_addrs == "cliente0@example.com") == 2
        run_row = db.session.scalar(select(BillingRun).where(BillingRun.period == LAST))
        assert (run_row.total, run_row.done, run_row.failed) == (12, 12, 0)
        assert run_row.finished_at is not None
    _assert_complete(app, LAST, 12)


def test_accounts_wait_for_their_corte_and_closed_ones_are_not_billed(app, telecom):
    with app.app_context():
        closed = _account(2)
        closed.status = billing.AccountStatus.CLOSED
        db.session.commit()
    state = _run(app, LAST)
    assert (state.total, state.done) == (11, 11)
    with app.app_context():
        assert _bill(_account(2), LAST) is None
    # The current month: only the accounts whose corte is over.
    today = billing.local_today(datetime.now(UTC))
    current = _run(app, _period(0))
    cortes = (1, 8, 15, 22)
    due = sum(1 for i in range(12) if i != 2 and cortes[i % 4] < today.day)
    assert current.done == due
    assert current.waiting == sum(1 for i in range(12) if i != 2 and cortes[i % 4] >= today.day)


def test_two_runs_at_once_double_nothing(app, telecom):
    errors = []

    def one_run():
        try:
            _run(app, LAST, batch_size=2)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    _assert_complete(app, LAST, 12)
    with app.app_context():
        assert _count(Invoice) == 2


# --- Killed halfway -----------------------------------------------------------------------------

CHILD = """
import sys
from tests.test_billing_run import child_main
child_main(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def child_main(config_json: str, stage: str, period: str) -> None:
    """In a process of its own: run the billing and SIGKILL this process at `stage`:
    "batch" in the middle of the second batch's transaction (bills of the first batch
    committed, the second's written but not committed), "pac" right after the PAC stamped the first
    invoice, before the stamp is recorded."""
    import os

    from webapp.app import create_app

    def die(*_):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    app = create_app(json.loads(config_json))
    with app.app_context():
        if stage == "batch":
            real, calls = billing._write, []

            def write_then_die(*args):
                written = real(*args)  # flushed, not committed
                calls.append(1)
                if len(calls) == 2:
                    die()
                return written

            billing._write = write_then_die
        else:
            pac = app.extensions["stamping"].providers.deployment()
            real_stamp = pac.stamp
            pac.stamp = lambda xml: (real_stamp(xml), die())[0]
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "telcel-demo"))
        billing.run(
            db.session, app.extensions["stamping"], issuer, period, datetime.now(UTC), batch_size=4
        )
    print("survived")


def _run_killed(app, stage: str, period: str) -> None:
    keys = ("SECRET_KEY", "DATA_KEY", "DATABASE_URL", "MAIL_URL", "BASE_URL", "PAC_SANDBOX_DIR")
    config = {k: app.config.get(k) for k in keys} | {"TESTING": True, "RATELIMIT_ENABLED": False}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config), stage, period],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,  # a bound for a hung child, far above its few seconds
    )
    assert child.returncode == -signal.SIGKILL, (stage, child.stdout, child.stderr[-2000:])


def test_killed_mid_batch_then_at_the_pac_then_run_again(app, telecom):
    _run_killed(app, "batch", LAST)
    with app.app_context():
        # The first batch is whole; of the second, nothing (its transaction died with it).
        assert _count(ServiceBill, ServiceBill.period == LAST) == 4
        assert _count(Ticket, Ticket.ticket_number.like(f"{LAST}-%")) == 4
        assert [i.status for i in db.session.scalars(select(Invoice))] == [InvoiceStatus.STAMPED]
        run_row = db.session.scalar(select(BillingRun).where(BillingRun.period == LAST))
        assert run_row.finished_at is None and run_row.done == 4
    # Resumed, and killed again: right after the PAC stamped the next invoice.
    _run_killed(app, "pac", LAST)
    with app.app_context():
        assert _count(ServiceBill, ServiceBill.period == LAST) == 12
        statuses = [i.status for i in db.session.scalars(select(Invoice).order_by(Invoice.id))]
        assert statuses == [InvoiceStatus.STAMPED, InvoiceStatus.STAMPING]
    result = app.test_cli_runner().invoke(
        args=["billing", "run", "--issuer", "telcel-demo", "--period", LAST]
    )
    assert result.exit_code == 0, result.output
    assert f"telcel-demo {LAST}: 12 of 12 accounts billed; 0 invoice(s) not stamped" in (
        result.output
    )
    # The invoice whose answer died with the process: reconcile asks the PAC and records it.
    reconciled = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert "recorded now: 1; stamped now: 0" in reconciled.output, reconciled.output
    _assert_complete(app, LAST, 12)
    with app.app_context():
        assert _count(Invoice) == 2  # stamped once each, never twice
        assert _count(MailMessage) == 2  # each invoice's email queued with its stamp


# --- The command's errors -----------------------------------------------------------------------


def test_command_refuses_what_cannot_run(app, telecom):
    with app.app_context():
        db.session.add(
            Issuer(
                slug="tienda",
                rfc="EKU9003173C9",
                legal_name="ESCUELA KEMPER URGATE",
                regimen_fiscal="601",
                cp="42501",
            )
        )
        db.session.commit()
    runner = app.test_cli_runner()
    cases = [
        ("nadie", LAST, "no issuer 'nadie'"),
        ("tienda", LAST, "retail issuer"),
        ("telcel-demo", "2026-13", "is not a month written YYYY-MM"),
        ("telcel-demo", "noviembre", "is not a month written YYYY-MM"),
        ("telcel-demo", _period(-1), "has not begun yet"),
    ]
    for slug, period, message in cases:
        result = runner.invoke(args=["billing", "run", "--issuer", slug, "--period", period])
        assert result.exit_code == 2, (slug, period, result.output)
        assert message in result.output, result.output
    with app.app_context():
        assert _count(ServiceBill) == 0 and _count(BillingRun) == 0


# --- The back office ------------------------------------------------------------------------------


def test_back_office_button_starts_the_run_and_shows_its_progress(
    app, client, telecom_admin, admin_login
):
    admin_login(client, telecom_admin)
    page = client.get("/admin/servicios/facturacion")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Generar facturas del periodo" in html
    assert f'<option selected value="{LAST}">' in html
    assert "Aún no se ha facturado ningún periodo." in html

    response = client.post("/admin/servicios/facturacion", data={"period": LAST})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/servicios/facturacion/{LAST}")

    def finished():
        with app.app_context():
            return db.session.scalar(
                select(BillingRun.finished_at).where(BillingRun.period == LAST)
            )

    wait_until(finished, "the billing run started from the back office to finish")
    _assert_complete(app, LAST, 12)
    page = client.get(f"/admin/servicios/facturacion/{LAST}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<progress class="bar" value="12" max="12"' in html
    assert "Terminado" in html and "12 / 12" in html
    assert "hx-trigger" not in html and 'http-equiv="refresh"' not in html  # nothing to wait for
    listing = client.get("/admin/servicios/facturacion").get_data(as_text=True)
    assert f">{LAST}</a>" in listing and '<progress class="bar" value="12" max="12"' in listing


def test_back_office_running_stale_and_refusals(app, client, telecom, telecom_admin, admin_login):
    admin_login(client, telecom_admin)
    with app.app_context():
        now = datetime.now(UTC)
        db.session.add_all(
            [
                BillingRun(
                    issuer_id=telecom["issuer_id"],
                    period=LAST,
                    total=12,
                    done=5,
                    heartbeat_at=now,
                ),
                BillingRun(
                    issuer_id=telecom["issuer_id"],
                    period=BEFORE,
                    total=12,
                    done=3,
                    heartbeat_at=now - billing.STALE_AFTER - timedelta(seconds=1),
                ),
            ]
        )
        db.session.commit()
    # Running: the bar refreshes itself (htmx every 2 s, or a meta refresh without JS).
    html = client.get(f"/admin/servicios/facturacion/{LAST}").get_data(as_text=True)
    assert '<progress class="bar" value="5" max="12"' in html
    assert 'hx-trigger="every 2s"' in html
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    fragment = client.get(f"/admin/servicios/facturacion/{LAST}", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="avance"') and "<html" not in body
    assert "HX-Request" in fragment.headers["Vary"]
    # Pressing the button again while it runs starts nothing.
    response = client.post("/admin/servicios/facturacion", data={"period": LAST})
    assert response.status_code == 303
    with app.app_context():
        assert _count(ServiceBill) == 0
    # Stale (its process died): offered to continue.
    html = client.get(f"/admin/servicios/facturacion/{BEFORE}").get_data(as_text=True)
    assert "Detenido" in html and "El proceso se detuvo" in html
    assert "hx-trigger" not in html
    # Bad input: a period not offered, a future one; an unknown run.
    bad = client.post("/admin/servicios/facturacion", data={"period": "2026-13"})
    assert bad.status_code == 422 and "Elija un periodo de la lista." in bad.get_data(as_text=True)
    future = client.post("/admin/servicios/facturacion", data={"period": _period(-1)})
    assert future.status_code == 422
    assert client.get("/admin/servicios/facturacion/1999-01").status_code == 404
    # The stale run, continued with the button: it finishes, every account billed once.
    response = client.post("/admin/servicios/facturacion", data={"period": BEFORE})
    assert response.status_code == 303

    def finished():
        with app.app_context():
            return db.session.scalar(
                select(BillingRun.finished_at).where(BillingRun.period == BEFORE)
            )

    wait_until(finished, "the stale billing run continued from the back office to finish")
    _assert_complete(app, BEFORE, 12)


def test_back_office_of_a_retail_issuer_has_no_billing(app, client, telecom, admin_login):
    from webapp.admin.staff import create_staff

    with app.app_context():
        shop = Issuer(
            slug="tienda",
            rfc="EKU9003173C9",
            legal_name="ESCUELA KEMPER URGATE",
            regimen_fiscal="601",
            cp="42501",
        )
        db.session.add(shop)
        db.session.flush()
        create_staff(
            db.session,
            "admin.tienda@example.com",
            StaffRole.ISSUER_ADMIN,
            shop,
            password=STAFF_PASSWORD,
        )
        db.session.commit()
    admin_login(client, "admin.tienda@example.com")
    page = client.get("/admin/servicios/facturacion")
    assert page.status_code == 200
    assert "Este emisor no factura servicios" in page.get_data(as_text=True)
    assert client.post("/admin/servicios/facturacion", data={"period": LAST}).status_code == 404
    with app.app_context():
        assert _count(BillingRun) == 0 and _count(ServiceLine) == 18
