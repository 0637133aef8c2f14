"""Billing run benchmark: bills per second for N service accounts (10,000 by default), beside
the single-invoice stamping figure measured in the same run, and the process's peak memory
as the run goes (it must stay flat as the number of accounts grows).

    .venv/bin/python bench/billing.py [--accounts 10000] [--single 50] [--batch-size 100]

A temporary SQLite database (migrated with webapp.migrate.upgrade) gets the demo telecom
provider with N accounts and 1.6 × N lines (webapp.demo.services.load_services_demo: one
holder in ten gave fiscal data, so one bill in ten is stamped as a CFDI through the sandbox
PAC and emailed through the outbox; the rest are receipts). The data is made in a child
process, so this process's peak memory (resource.getrusage ru_maxrss) is the billing run's
own; it is read at start, then each time the run passes a quarter of the accounts.

Then, in the same process and on the same database, `--single` invoices are stamped one by
one through the same road the run uses for a bill (Stamping.issue of one ticket of the
billing branch, the same receptor and kind of lines): the single-invoice figure.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any directory
os.environ.setdefault("SECRET_KEY", "bench-secret-key")
# One data key for the child that loads the data and this process; nothing in instance/.
os.environ.setdefault("DATA_KEY", Fernet.generate_key().decode())

from sqlalchemy import func, select  # noqa: E402

from webapp import crypto  # noqa: E402
from webapp.app import create_app  # noqa: E402
from webapp.billing import run as billing  # noqa: E402
from webapp.cfdi.catalogs import MEXICO_CITY  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.fiscal.receptor import Receptor  # noqa: E402
from webapp.issuing import issue  # noqa: E402
from webapp.migrate import upgrade  # noqa: E402
from webapp.models import (  # noqa: E402
    BillKind,
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    ServiceBill,
    Ticket,
    TicketLine,
)

RECEPTOR = Receptor("XOJI740919U48", "INGRID XODAR JIMENEZ", "76028", "612", "G03")


def config(directory: Path) -> dict:
    return {
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "DATABASE_URL": f"sqlite:///{directory / 'bench.db'}",
        "MAIL_URL": f"file://{directory / 'mail'}",
        "BASE_URL": "http://127.0.0.1",
        "PAC": "sandbox",
        "PAC_SANDBOX_DIR": str(directory / "sandbox-pac"),
        "DEBUG": False,
        "TESTING": False,
        "RATELIMIT_ENABLED": False,
    }


def prepare(directory: Path, accounts: int) -> None:
    """In a child process: migrate and load the telecom demo with `accounts` accounts."""
    from webapp.demo.services import load_services_demo

    upgrade(config(directory)["DATABASE_URL"])
    app = create_app(config(directory))
    with app.app_context():
        cipher = crypto.cipher_from_config(app.config)
        load_services_demo(db.session, cipher, accounts=accounts, lines=accounts * 8 // 5)
    app.extensions["db"].engine.dispose()


def peak_mib() -> float:
    """This process's peak resident memory, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def last_period(now: datetime) -> str:
    today = now.astimezone(MEXICO_CITY).date()
    return billing.period_of(today.replace(day=1) - timedelta(days=1))


def single_invoices(app, count: int) -> list[float]:
    """Seconds of each of `count` single invoices stamped one by one through Stamping.issue:
    a fresh one-line ticket of the billing branch each (a bill's kind of concepto)."""
    times = []
    with app.app_context():
        session = db.session
        issuer = session.scalar(select(Issuer).where(Issuer.kind == "services"))
        branch = session.scalar(
            select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == "FACTURACION")
        )
        issuer_id, branch_id = issuer.id, branch.id
        sold = datetime.now(UTC) - timedelta(hours=1)
        ids = []
        for index in range(count + 3):
            ticket = Ticket(
                branch_id=branch_id,
                order_number=f"S{index}",
                ticket_number=f"SINGLE-{index}",
                sold_at=sold,
                total=Decimal("200.00"),
                lines=[
                    TicketLine(
                        position=1,
                        description="Plan Conecta 5 GB — línea +52 55 8000 0001",
                        clave_prod_serv="81161700",
                        clave_unidad="E48",
                        quantity=Decimal(1),
                        unit_price=Decimal("172.41"),
                        objeto_imp="02",
                        tax_factor="Tasa",
                        tax_rate=Decimal("0.16"),
                    )
                ],
            )
            session.add(ticket)
            session.flush()
            ids.append(ticket.id)
        session.commit()
        stamping = app.extensions["stamping"]
        for index, ticket_id in enumerate(ids):
            request = issue.Request(
                branch_id, [ticket_id], RECEPTOR, "01", "ingrid@example.com", f"single-{index}"
            )
            started = time.perf_counter()
            outcome = stamping.issue(
                session, request, session.get(Issuer, issuer_id), datetime.now(UTC)
            )
            elapsed = time.perf_counter() - started
            assert outcome.invoice is not None and outcome.invoice.status is InvoiceStatus.STAMPED
            if index >= 3:  # warm-up
                times.append(elapsed)
            session.expunge_all()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=50, help="single invoices measured")
    parser.add_argument("--batch-size", type=int, default=billing.BATCH_SIZE)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="autofactura-bench-billing-") as name:
        directory = Path(name)
        begun = time.perf_counter()
        child = multiprocessing.get_context("fork").Process(
            target=prepare, args=(directory, args.accounts)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"preparing the data failed (exit {child.exitcode})")
        setup = time.perf_counter() - begun

        app = create_app(config(directory))
        app.logger.disabled = True
        import logging

        logging.getLogger("webapp").setLevel(logging.WARNING)
        now = datetime.now(UTC)
        period = last_period(now)
        marks = [args.accounts * q // 4 for q in (1, 2, 3, 4)]
        memory: list[tuple[int, float, float]] = []  # (accounts done, seconds, peak MiB)
        with app.app_context():
            issuer = db.session.scalar(select(Issuer).where(Issuer.kind == "services"))
            memory.append((0, 0.0, peak_mib()))
            started = time.perf_counter()

            def progress(state: billing.RunState) -> None:
                while marks and state.done >= marks[0]:
                    memory.append((marks.pop(0), time.perf_counter() - started, peak_mib()))

            state = billing.run(
                db.session,
                app.extensions["stamping"],
                issuer,
                period,
                now,
                progress,
                batch_size=args.batch_size,
            )
            elapsed = time.perf_counter() - started
            session = db.session
            invoices = session.scalar(
                select(func.count())
                .select_from(ServiceBill)
                .where(ServiceBill.period == period, ServiceBill.kind == BillKind.INVOICE)
            )
            stamped = session.scalar(
                select(func.count())
                .select_from(Invoice)
                .where(Invoice.status == InvoiceStatus.STAMPED)
            )
            rerun_started = time.perf_counter()
            again = billing.run(
                session, app.extensions["stamping"], issuer, period, datetime.now(UTC)
            )
            rerun = time.perf_counter() - rerun_started
        singles = single_invoices(app, args.single)
        app.extensions["db"].engine.dispose()

    bills_per_second = state.done / elapsed if elapsed else 0.0
    single_per_second = len(singles) / sum(singles) if singles else 0.0
    print(
        f"Autofactura billing run bench — Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, SQLite (temporary file)"
    )
    print(
        f"{args.accounts:,} service accounts, {args.accounts * 8 // 5:,} lines, period "
        f"{period}, batches of {args.batch_size}; setup (migrate + demo data, in a child "
        f"process) {setup:.1f} s"
    )
    print()
    print(
        f"billing run: {state.done:,} bills in {elapsed:.1f} s = {bills_per_second:,.0f} "
        f"bills/s ({invoices:,} stamped as CFDI through the sandbox PAC and emailed via the "
        f"outbox, {state.done - invoices:,} receipts; {stamped:,} invoices stamped, "
        f"{state.failed} not)"
    )
    print(
        f"single invoice, same road (Stamping.issue of one ticket), sequential, n = "
        f"{len(singles)}: {single_per_second:,.1f} invoices/s, p50 "
        f"{statistics.median(singles) * 1000:.1f} ms, p95 "
        f"{sorted(singles)[max(0, int(len(singles) * 0.95) - 1)] * 1000:.1f} ms"
    )
    print(
        f"rerun of the finished period (adds nothing): {rerun:.2f} s, {again.done:,} bills, "
        f"{again.failed} not stamped"
    )
    print()
    print("peak memory of this process (ru_maxrss) as the run goes:")
    print(f"  {'accounts billed':>16}{'seconds':>10}{'peak MiB':>10}")
    for done, seconds, mib in memory:
        print(f"  {done:>16,}{seconds:>10.1f}{mib:>10.1f}")
    growth = memory[-1][2] - memory[1][2] if len(memory) > 2 else 0.0
    print(
        f"  growth from {memory[1][0]:,} to {memory[-1][0]:,} accounts: {growth:+.1f} MiB"
        if len(memory) > 2
        else ""
    )
    print(f"\ntotal {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
