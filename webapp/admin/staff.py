"""Creating staff members (no Flask): used by `flask staff`, the demo and the back office."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Branch, Issuer, StaffMember, StaffRole, utcnow
from webapp.security.passwords import hash_password


class StaffError(ValueError):
    """The staff member cannot be created as asked (the message says why, in English)."""


def create_staff(
    session: Session,
    email: str,
    role: StaffRole,
    issuer: Issuer | None = None,
    branch: Branch | None = None,
    password: str | None = None,
    name: str = "",
) -> StaffMember:
    """A new staff member; without `password` they choose one from an emailed link."""
    email = email.strip().lower()
    if "@" not in email:
        raise StaffError(f"{email!r} is not an email address")
    if session.scalar(select(StaffMember.id).where(StaffMember.email == email)) is not None:
        raise StaffError(f"{email} is already a staff member")
    if role is StaffRole.OPERATOR and (issuer or branch):
        raise StaffError("the platform operator belongs to no issuer or branch")
    if role is not StaffRole.OPERATOR and issuer is None:
        raise StaffError(f"a {role.value} needs an issuer")
    if role is StaffRole.BRANCH_STAFF and (branch is None or branch.issuer_id != issuer.id):
        raise StaffError("branch staff need a branch of their issuer")
    if role is StaffRole.ISSUER_ADMIN:
        branch = None
    member = StaffMember(
        email=email,
        name=name,
        role=role,
        issuer_id=issuer.id if issuer else None,
        branch_id=branch.id if branch else None,
        password_hash=hash_password(password) if password else None,
        password_changed_at=utcnow() if password else None,
    )
    session.add(member)
    session.flush()
    return member
