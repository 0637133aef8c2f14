"""`flask demo ...` commands: load the demo merchant, list tickets to try the portal with."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select, text

from webapp.extensions import db
from webapp.models import Branch, Invoice, Issuer, Ticket, TicketStatus

# webapp.demo.data is imported inside the commands: it pulls satcfdi, which every app
# (web, tests) would otherwise load at start-up only to register these commands.

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("load")
def load_command() -> None:
    """Create the demo merchant: test CSD, 3 branches, 2,000 open tickets; the demo telecom
    provider and its bills; the Ecuadorian demo (idempotent)."""
    from webapp import crypto
    from webapp.billing.run import BillingError
    from webapp.demo import data, ecuador, platform, services
    from webapp.demo.staff import STAFF_PASSWORD, ensure_demo_staff
    from webapp.wiring import stamping

    cipher = crypto.cipher_from_config(current_app.config)
    result = data.load_demo(db.session, cipher)
    issuer = result.issuer
    # No holder emails: six months of their invoices would bury a newcomer's mail in /dev/mail.
    telecom = services.load_services_demo(db.session, cipher, holder_emails=False)
    andes = ecuador.load_ecuador_demo(db.session, cipher, holder_emails=False)
    staff = ensure_demo_staff(
        db.session, issuer, telecom.issuer, ecuador=(andes.services, andes.shop)
    )
    db.session.commit()
    operator = platform.load_platform_demo(db.session, cipher, issuer)
    bills = services.load_history(
        db.session, stamping(), progress=lambda period: click.echo(f"  billed {period}", err=True)
    )
    try:
        andes_bills: int | None = ecuador.load_ecuador_history(
            db.session,
            stamping(),
            progress=lambda period: click.echo(f"  billed {period} (Ecuador)", err=True),
        )
    except BillingError as error:  # the billing run has no SRI document yet
        db.session.rollback()
        andes_bills = None
        click.echo(f"  Ecuadorian bills not made: {error}", err=True)
    if not result.created:
        click.echo(
            f"Demo issuer '{issuer.slug}' already exists ({issuer.rfc} {issuer.legal_name}, "
            f"{result.branches} branches, {result.tickets} open tickets): nothing changed."
        )
    else:
        click.echo(
            f"Created demo issuer '{issuer.slug}': {issuer.rfc} {issuer.legal_name}, "
            f"test CSD {issuer.csd_number}, {result.branches} branches, "
            f"{result.tickets} open tickets."
        )
        click.echo("Try `flask demo tickets --count 5` for tickets to invoice.")
    if telecom.created:
        click.echo(
            f"Created demo telecom provider '{telecom.issuer.slug}': {telecom.issuer.rfc} "
            f"{telecom.issuer.legal_name}, {telecom.accounts} service accounts, "
            f"{telecom.lines} lines, {bills} bills of the last 6 months. Try "
            "`flask demo lines --count 5` for lines to add."
        )
    if andes.created:
        made = (
            f"{andes_bills} SRI facturas of the last 6 months"
            if andes_bills is not None
            else "no bills yet"
        )
        click.echo(
            f"Created the Ecuadorian demo: telecom provider '{andes.services.slug}' "
            f"(RUC {andes.services.rfc} {andes.services.legal_name}, {andes.accounts} service "
            f"accounts, {andes.lines} lines, {made}) and shop '{andes.shop.slug}' "
            f"(RUC {andes.shop.rfc} {andes.shop.trade_name}, {andes.tickets} open tickets in "
            "USD), each with a test .p12. Try `flask demo tickets --issuer quito-demo` and "
            "`flask demo lines --issuer andina-demo`."
        )
    if operator.created:
        click.echo(
            f"Created the platform operator's demo: {operator.products} products, its issuer "
            f"'{operator.platform.slug}' ({operator.platform.rfc}) for its own CFDI, and the "
            f"merchant '{issuer.slug}' with a licence expiring in 10 days and 419 stamp "
            "credits: sign in to /admin as its admin to see the renewal quote; the operator's "
            "console is /operador/."
        )
    click.echo(
        "Back office (/admin): "
        + ", ".join(f"{m.email} ({m.role.value})" for m in staff)
        + f"; password {STAFF_PASSWORD}"
    )


@demo_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int) -> None:
    """`make run` in one process: migrate, load the demo data (once), archive the invoices
    due, then serve on HOST:PORT with the mail worker (and its reconcile) and the SMS worker
    in threads beside the server. Ctrl-C stops them all."""
    import threading

    from werkzeug.serving import run_simple

    from webapp.invoicing.cli import archive_command
    from webapp.mail.cli import app_sessions, reconcile_chore
    from webapp.mail.transport import transport_from_config
    from webapp.mail.worker import work
    from webapp.migrate import upgrade
    from webapp.sms import cli as sms
    from webapp.sms import transport as sms_transport
    from webapp.sms import worker as sms_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    upgrade(app.config["DATABASE_URL"])
    ctx.invoke(load_command)
    ctx.invoke(archive_command)
    db.session.close()
    stop = threading.Event()
    worker = threading.Thread(
        target=work,
        args=(app_sessions(app), app.config, 5.0, stop, transport_from_config(app.config)),
        kwargs={"chores": [(60.0, reconcile_chore(app))]},
        name="mail-worker",
        daemon=True,
    )
    sms_thread = threading.Thread(
        target=sms_worker.work,
        args=(
            sms.app_sessions(app),
            app.config,
            2.0,  # a verification code should not keep its reader waiting
            stop,
            sms_transport.transport_from_config(app.config),
        ),
        name="sms-worker",
        daemon=True,
    )
    worker.start()
    sms_thread.start()
    click.echo(f"Autofactura on http://{host}:{port} (Ctrl-C stops the server and the workers)")
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        stop.set()
        worker.join(timeout=30)
        sms_thread.join(timeout=30)


@demo_cli.command("tickets")
@click.option("--count", "-n", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--branch", "branch_code", help="Only this branch code (e.g. CENTRO).")
@click.option("--issuer", "--slug", "slug", default="demo", show_default=True, help="Issuer slug.")
def tickets_command(count: int, branch_code: str | None, slug: str) -> None:
    """Print open tickets that can be invoiced now under the issuer's invoicing window,
    newest first, one JSON object per line (sale times in the issuer's country's time)."""
    from webapp.demo.data import MEXICO_CITY
    from webapp.demo.ecuador import ECUADOR
    from webapp.fiscal.window import in_window, parse_policy
    from webapp.models import utcnow

    issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None:
        raise click.ClickException(f"No issuer '{slug}'. Run `flask demo load` first.")
    policy, now = parse_policy(issuer.window_policy), utcnow()
    zone = ECUADOR if issuer.country == "EC" else MEXICO_CITY
    query = (
        select(Ticket, Branch)
        .join(Branch, Ticket.branch_id == Branch.id)
        .where(Branch.issuer_id == issuer.id, Ticket.status == TicketStatus.OPEN)
        .order_by(Ticket.sold_at.desc(), Ticket.id.desc())
    )
    if branch_code:
        query = query.where(Branch.code == branch_code)
    printed = 0
    for ticket, branch in db.session.execute(query.execution_options(yield_per=200)):
        if printed == count or not in_window(ticket.sold_at, now, policy):
            break  # newest first: once one is out of the window, every older one is too
        record = {
            "branch_code": branch.code,
            "branch_name": branch.name,
            "order_number": ticket.order_number,
            "ticket_number": ticket.ticket_number,
            "total": f"{ticket.total:.2f}",
            "sold_at": ticket.sold_at.astimezone(zone).isoformat(),
        }
        click.echo(json.dumps(record, ensure_ascii=False))
        printed += 1
    if printed < count:
        click.echo(
            f"{printed} open ticket(s) of '{slug}' can be invoiced now under its invoicing "
            f"window ({issuer.window_policy}); the older ones cannot.",
            err=True,
        )


@demo_cli.command("lines")
@click.option("--count", "-n", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--issuer", "--slug", "slug", default="telcel-demo", show_default=True, help="Issuer slug."
)
def lines_command(count: int, slug: str) -> None:
    """Print lines of the demo telecom provider to add in Mis servicios, one JSON object per
    line: the number, its service type, the holder, and where its code is sent."""
    from webapp.models import LineKind, ServiceAccount, ServiceLine, ServiceType

    issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug, Issuer.kind == "services"))
    if issuer is None:
        raise click.ClickException(f"No services issuer '{slug}'. Run `flask demo load` first.")
    rows = db.session.execute(
        select(ServiceLine, ServiceType, ServiceAccount)
        .join(ServiceType, ServiceLine.service_type_id == ServiceType.id)
        .join(ServiceAccount, ServiceLine.service_account_id == ServiceAccount.id)
        .where(ServiceLine.issuer_id == issuer.id)
        .order_by(ServiceLine.id)
        .limit(count)
    )
    for line, service_type, account in rows:
        phone = service_type.line_kind is LineKind.PHONE
        record = {
            "number": line.number,
            "service_type": service_type.code,
            "service_type_name": service_type.name,
            "holder": account.holder_name,
            "account": account.number,
            "fiscal_data": account.has_fiscal_data,
            "code_sent_to": line.number if phone else account.contact_mobile,
        }
        click.echo(json.dumps(record, ensure_ascii=False))


@demo_cli.command("invoices")
@click.option("--count", "-n", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--account",
    "email",
    help="Email of an existing verified account (default: the demo customer, created if needed).",
)
def invoices_command(count: int, email: str | None) -> None:
    """Fill the panel: COUNT history invoices (no files) for one account, over three years."""
    from webapp.demo import invoices
    from webapp.models import Account, utcnow

    now = utcnow()
    if email:
        account = db.session.scalar(select(Account).where(Account.email == email.lower()))
        if account is None or not account.verified:
            raise click.ClickException(f"No verified account with email {email}.")
    else:
        customer = invoices.demo_customer(db.session, now)
        account = customer.account
        db.session.commit()
        if customer.created:
            click.echo(
                f"Created the demo customer: RFC {account.rfc}, email {account.email}, "
                f"password {invoices.CUSTOMER_PASSWORD}"
            )
    made = invoices.load_invoices(
        db.session,
        account,
        count,
        now,
        retention_days=current_app.config.get("RETENTION_DAYS", 90),
        progress=lambda done: click.echo(f"  {done:,} / {count:,}", err=True),
    )
    # Fresh statistics: without them SQLite walks the date index for a narrow total range
    # (100 ms instead of 0.1 ms at 1M rows), and PostgreSQL's index-only scans need the
    # visibility map that VACUUM sets (autovacuum gets there, but later).
    analyze(db.engine)
    total = db.session.scalar(
        select(func.count()).select_from(Invoice).where(Invoice.account_id == account.id)
    )
    click.echo(
        f"Added {made:,} invoices to the panel of {account.rfc} ({account.email}); "
        f"it now lists {total:,}."
    )


def analyze(engine) -> None:
    """Refresh the planner's statistics after a bulk load."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:  # VACUUM cannot run inside a transaction
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE invoice"))


@demo_cli.command("remove")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_command(yes: bool) -> None:
    """Take the demo out of this database before it goes to production: the demo issuers
    and all their data, the demo staff (the operator too) and the demo customer, whose
    passwords are published. Other issuers' data is never touched (idempotent)."""
    from webapp.demo import remove

    found = remove.find(db.session)
    if found.empty:
        click.echo("No demo data in this database: nothing to remove.")
        return
    click.echo("This removes, with all their data:")
    click.echo(f"  demo issuers: {', '.join(found.issuers) or '-'}")
    click.echo(f"  demo staff: {', '.join(found.staff) or '-'}")
    click.echo(f"  demo customers: {', '.join(found.accounts) or '-'}")
    if not yes and not click.confirm("Remove them for good?", default=False):
        click.echo("Nothing removed.")
        return
    removal = remove.remove(db.session)
    db.session.commit()
    total = sum(removal.rows.values())
    click.echo(f"Removed the demo: {total} rows in {len(removal.rows)} tables.")
    if removal.operator_removed:
        click.echo(
            "The demo operator is gone too: create yours with "
            "`flask staff create --role operator --email ...`."
        )
