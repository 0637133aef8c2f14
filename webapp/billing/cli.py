"""`flask billing run --issuer SLUG --period YYYY-MM`: the billing run from the command line,
with a progress bar (webapp.billing.run does the work). The billing package's edge to Flask,
like webapp/mail/cli.py: the run gets the app's session and stamping service here.

Exit status: 0 when every bill is made (invoices stamped, or on their way and left to
reconcile); 1 when some invoice could not be stamped (run it again to retry them); 2 for a
request that cannot run (unknown issuer, a retail issuer, a bad or future period).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.billing import run as billing
from webapp.extensions import db
from webapp.models import Issuer

billing_cli = AppGroup("billing", help="Monthly service bills.")

MESSAGES = {
    "not_services": "issuer '{slug}' is a retail issuer: only services issuers bill periods.",
    "bad_period": "period '{period}' is not a month written YYYY-MM (e.g. 2026-11).",
    "future_period": "period '{period}' has not begun yet: bill a past or the current month.",
    "unsupported_country": "issuer '{slug}' is in a country whose bills are not supported yet.",
}


def _fail(message: str) -> None:
    raise click.UsageError(message)


@billing_cli.command("run")
@click.option("--issuer", "slug", required=True, help="The services issuer's slug.")
@click.option("--period", required=True, help="The month to bill, YYYY-MM.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=billing.BATCH_SIZE,
    show_default=True,
    help="Accounts per transaction.",
)
def run_command(slug: str, period: str, batch_size: int) -> None:
    """Issue one bill per active service account of ISSUER for PERIOD: an invoice (CFDI) to
    the holders who gave fiscal data, a receipt (into the factura global) to the rest.
    Resumable: run it again after a crash or a kill and it finishes what was left."""
    session = db.session
    issuer = session.scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None:
        _fail(f"no issuer '{slug}'.")
    now = datetime.now(UTC)
    try:
        billing.check(issuer, period, now)
    except billing.BillingError as problem:
        _fail(MESSAGES[problem.code].format(slug=slug, period=period))
    bar = None
    shown = 0

    def progress(state: billing.RunState) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(
                length=max(state.total, 1),
                label=f"Billing {slug} {period}",
                show_pos=True,
                file=sys.stderr,
            )
            bar.__enter__()
        bar.length = max(state.total, 1)
        bar.update(state.done - shown)
        shown = state.done

    stamping = current_app.extensions["stamping"]
    try:
        state = billing.run(session, stamping, issuer, period, now, progress, batch_size=batch_size)
    except billing.BillingError as problem:
        _fail(MESSAGES[problem.code].format(slug=slug, period=period))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(
        f"{slug} {period}: {state.done} of {state.total} accounts billed; "
        f"{state.failed} invoice(s) not stamped; {state.waiting} account(s) wait for their corte."
    )
    if state.failed:
        if state.error:
            click.echo(f"Last refusal: {state.error}", err=True)
        click.echo("Run it again to retry the invoices not stamped.", err=True)
        raise SystemExit(1)
