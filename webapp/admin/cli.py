"""`flask staff ...`: create and list back-office staff from the command line."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Branch, Issuer, StaffMember, StaffRole

staff_cli = AppGroup(
    "staff", help="Back-office staff (platform operator, issuer admins, branch staff)."
)


@staff_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in StaffRole]), required=True)
@click.option("--issuer", "slug", help="Issuer slug (issuer_admin, branch_staff).")
@click.option("--branch", "branch_code", help="Branch code (branch_staff).")
@click.option("--name", default="")
def create_command(email: str, role: str, slug: str | None, branch_code: str | None, name: str):
    """Create a staff member and print the link where they choose their password."""
    from webapp.admin.routes import password_link
    from webapp.admin.staff import StaffError, create_staff

    issuer = branch = None
    if slug:
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
        if issuer is None:
            raise click.UsageError(f"no issuer with slug {slug!r}")
    if branch_code:
        if issuer is None:
            raise click.UsageError("--branch needs --issuer")
        branch = db.session.scalar(
            select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == branch_code)
        )
        if branch is None:
            raise click.UsageError(f"no branch {branch_code!r} in {slug}")
    try:
        member = create_staff(db.session, email, StaffRole(role), issuer, branch, name=name)
    except StaffError as exc:
        raise click.UsageError(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created {member.role.value} {member.email} (id {member.id}).")
    with current_app.test_request_context():
        link = password_link(member)
    click.echo(f"Password link (single use): {link}")


@staff_cli.command("list")
def list_command():
    """One line per staff member: id, email, role, issuer, branch, active."""
    for member in db.session.scalars(select(StaffMember).order_by(StaffMember.id)):
        click.echo(
            f"{member.id}\t{member.email}\t{member.role.value}\t"
            f"{member.issuer.slug if member.issuer else '-'}\t"
            f"{member.branch.code if member.branch else '-'}\t"
            f"{'active' if member.active else 'disabled'}"
        )
