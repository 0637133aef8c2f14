"""`flask kiosk ...`: enrol, list and revoke kiosk terminals (until the merchant admin
offers the same through webapp.kiosk.devices)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import segno
from flask import current_app, url_for
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.extensions import db
from webapp.kiosk import devices
from webapp.models import Branch, Issuer, Kiosk

kiosk_cli = AppGroup("kiosk", help="Kiosk terminals in branches.")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@kiosk_cli.command("enrol")
@click.option("--branch", "code", required=True, help="Branch code, e.g. CENTRO.")
@click.option("--issuer", "slug", default="demo", show_default=True, help="Issuer's slug.")
@click.option("--name", default="", help='A name for staff, e.g. "Caja 1".')
@click.option(
    "--qr",
    "qr_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the link's QR code to this file (.svg or .png); else it is printed here.",
)
def enrol_command(code: str, slug: str, name: str, qr_path: str | None) -> None:
    """Create a kiosk of a branch and print its enrolment link (single use, expiring)."""
    issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None:
        raise click.ClickException(f"no issuer with slug {slug!r}")
    branch = db.session.scalar(
        select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == code.strip().upper())
    )
    if branch is None:
        codes = ", ".join(b.code for b in issuer.branches)
        raise click.ClickException(f"no branch {code!r} in {slug!r} (branches: {codes})")
    kiosk = devices.create(db.session, branch, name)
    token = devices.enrol_token(current_app.config["SECRET_KEY"], kiosk)
    db.session.commit()
    with current_app.test_request_context():
        path = url_for("kiosk.enrol", token=token)
    link = current_app.config["BASE_URL"].rstrip("/") + path
    hours = current_app.config["KIOSK_ENROL_HOURS"]
    click.echo(f"kiosk {kiosk.id} of {slug}/{branch.code} {kiosk.name!r}: pending")
    click.echo(f"open this link on the kiosk within {hours} h (it works once):")
    click.echo(link)
    qr = segno.make(link, error="m")
    if qr_path:
        qr.save(qr_path, scale=8, border=4)
        click.echo(f"QR code written to {qr_path}")
    else:
        qr.terminal(compact=True)


@kiosk_cli.command("list")
def list_command() -> None:
    """Every kiosk: id, state, issuer/branch, name, enrolled, last seen, revoked."""
    kiosks = devices.all_kiosks(db.session)
    if not kiosks:
        click.echo("no kiosks")
    for k in kiosks:
        click.echo(
            f"{k.id}\t{k.state}\t{k.branch.issuer.slug}/{k.branch.code}\t{k.name or '-'}\t"
            f"enrolled {_when(k.enrolled_at)}\tseen {_when(k.last_seen_at)}\t"
            f"revoked {_when(k.revoked_at)}"
        )


@kiosk_cli.command("revoke")
@click.argument("kiosk_id", type=int)
def revoke_command(kiosk_id: int) -> None:
    """Revoke a kiosk: on its next request the browser is a normal one again."""
    kiosk = db.session.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise click.ClickException(f"no kiosk {kiosk_id}")
    devices.revoke(kiosk, datetime.now(UTC))
    db.session.commit()
    click.echo(f"kiosk {kiosk.id} ({kiosk.branch.code} {kiosk.name!r}) revoked")
