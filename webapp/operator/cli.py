"""`flask issuers create`: onboarding a merchant from a script, as the operator console's
"Alta de emisor" does (webapp.platform.onboarding): the issuer, pending its checklist, and
its first admin invited by email (the console's `invite_first_admin`, the back office's
invitation email).

Exit status: 0 when created; 2 when a value is refused (each problem is printed)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from webapp.admin.staff import StaffError
from webapp.extensions import db
from webapp.operator.onboarding import invite_first_admin
from webapp.platform import onboarding

issuers_cli = AppGroup("issuers", help="Issuers (merchants) of the platform.")

PROBLEMS = {
    onboarding.EMPTY: "is missing",
    onboarding.FORMAT: "is not valid",
    onboarding.TOO_LONG: "is too long",
    onboarding.TAKEN: "is already taken by another issuer",
    onboarding.UNKNOWN: "is not in the catalog",
    onboarding.WRONG_PERSON_TYPE: (
        "does not fit the RFC's person type (12 characters: moral, 13: física)"
    ),
    "check_digit": "has a wrong homoclave or check digit",
    "generic": "is a generic RFC, which cannot issue invoices",
    "has_suffix": "must be written without the company type (S.A. DE C.V.)",
    "not_uppercase": "must be written in capitals",
}
OPTIONS = {"rfc": "--rfc", "legal_name": "--name", "regimen": "--regimen", "cp": "--cp"}


@issuers_cli.command("create")
@click.option("--rfc", required=True, help="The RFC (Mexico) or the RUC (Ecuador).")
@click.option("--name", "legal_name", required=True, help="Razón social.")
@click.option("--regimen", default="", help="SAT's régimen fiscal code (Mexico), e.g. 601.")
@click.option("--cp", default="", help="Código postal of the domicilio fiscal (Mexico).")
@click.option("--slug", required=True, help="The portal's address: /facturar/<slug>/.")
@click.option("--admin-email", required=True, help="Its first admin, invited by email.")
@click.option("--admin-name", default="", help="The admin's name.")
@click.option("--country", type=click.Choice(["MX", "EC"]), default="MX", show_default=True)
@click.option(
    "--kind", type=click.Choice(["retail", "services"]), default="retail", show_default=True
)
@click.option(
    "--licence-until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="When its licence expires (YYYY-MM-DD; a year from today by default).",
)
def create_command(
    rfc, legal_name, regimen, cp, slug, admin_email, admin_name, country, kind, licence_until
) -> None:
    """Create a merchant pending its onboarding checklist and invite its first admin."""
    now = datetime.now(UTC)
    expires = (
        datetime.combine(licence_until.date(), time(23, 59, 59), UTC) if licence_until else None
    )
    new = onboarding.NewIssuer(
        tax_id=rfc,
        legal_name=legal_name,
        slug=slug,
        regimen=regimen,
        cp=cp,
        country=country,
        kind=kind,
        licence_expires_at=expires,
    )
    problems = onboarding.check(db.session, new)
    if expires is not None and expires <= now:
        problems["licence_until"] = "past"
    if problems:
        for field, problem in problems.items():
            option = OPTIONS.get(field, "--" + field.replace("_", "-"))
            wording = "must be after today" if problem == "past" else PROBLEMS.get(problem, problem)
            click.echo(f"{option} {wording}", err=True)
        sys.exit(2)
    base = current_app.config["BASE_URL"]
    try:
        issuer = onboarding.create(db.session, new, now)
        # The invitation's link is built as a request to BASE_URL would build it.
        with current_app.test_request_context("/", base_url=base):
            member, link = invite_first_admin(issuer, admin_email, admin_name)
        db.session.commit()
    except StaffError as error:
        db.session.rollback()
        click.echo(f"--admin-email: {error}", err=True)
        sys.exit(2)
    except IntegrityError:
        db.session.rollback()
        click.echo("the slug, the RFC or the admin's email was just taken: try again", err=True)
        sys.exit(2)
    click.echo(
        f"Created issuer '{issuer.slug}' ({issuer.country} {issuer.rfc} {issuer.legal_name}), "
        f"pending its onboarding checklist; licence until "
        f"{issuer.licence_expires_at:%Y-%m-%d}, 0 stamp credits."
    )
    click.echo(f"Invitation email queued for {member.email}.")
    if current_app.config.get("DEV_MAILBOX"):
        path = link.removeprefix(base.rstrip("/"))
        click.echo(f"Invitation link (development mailbox on): {path}")
