"""`flask invoices ...` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.issuing import retention
from webapp.wiring import stamping

invoices_cli = AppGroup("invoices", help="Invoices and stamping.")


@invoices_cli.command("reconcile")
@click.option(
    "--older-than",
    default=120,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only invoices left on their way to the PAC for at least this many seconds.",
)
def reconcile_command(older_than: int) -> None:
    """Finish or release every invoice left on its way to the PAC (draft, signed, stamping):
    ask the PAC first, never stamp a document twice; every stamp recorded queues its email."""
    outcome = stamping().reconcile(db.session, datetime.now(UTC), timedelta(seconds=older_than))
    click.echo(
        f"stamped by the PAC earlier and recorded now: {outcome['recorded']}; "
        f"stamped now: {outcome['stamped']}; released (tickets and folio free): "
        f"{outcome['released']}; provider did not answer, left for the next run: "
        f"{outcome['pending']}"
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
