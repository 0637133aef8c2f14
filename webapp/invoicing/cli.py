"""`flask invoices ...` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.invoicing import services
from webapp.issuing import issue, retention

invoices_cli = AppGroup("invoices", help="Invoices and stamping.")


@invoices_cli.command("reconcile")
@click.option(
    "--older-than",
    default=120,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only invoices stuck in 'stamping' for at least this many seconds.",
)
def reconcile_command(older_than: int) -> None:
    """Resolve invoices stuck in "stamping": ask the PAC, never stamp a document twice."""
    outcome = issue.reconcile(
        db.session,
        pac_for=services.pac_for,
        signer_for=services.signer_for,
        render_pdf=services.pdf_for,
        older_than=timedelta(seconds=older_than),
        now=datetime.now(UTC),
    )
    click.echo(
        f"stamped by the PAC earlier and recorded now: {outcome['stamped']}; "
        f"stamped now: {outcome['restamped']}; failed (tickets freed): {outcome['failed']}; "
        f"provider did not answer, left for the next run: {outcome['pending']}"
    )


@invoices_cli.command("archive")
@click.option(
    "--batch",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Invoices moved per transaction.",
)
def archive_command(batch: int) -> None:
    """Move the files of invoices stamped more than RETENTION_DAYS ago to the archive."""
    days = current_app.config["RETENTION_DAYS"]
    moved = retention.archive_due(db.session, datetime.now(UTC), days, batch=batch)
    click.echo(f"archived the files of {moved} invoice(s) stamped more than {days} days ago")
