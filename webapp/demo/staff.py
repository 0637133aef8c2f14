"""Demo back-office staff: the platform operator, the demo issuer's admin and one branch's
staff, with a known password (printed by `flask demo load`, in the README)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.admin.staff import create_staff
from webapp.models import Issuer, StaffMember, StaffRole

STAFF_PASSWORD = "Comercio-Demo-2026"  # noqa: S105 (demo data, printed by the command)
OPERATOR_EMAIL = "operador@example.com"
ADMIN_EMAIL = "admin.gaviota@example.com"
BRANCH_EMAIL = "centro.gaviota@example.com"
SERVICES_ADMIN_EMAIL = "admin.telcel@example.com"  # the demo telecom provider's admin
# The Ecuadorian demo's admins (webapp.demo.ecuador): the telecom provider's and the shop's.
ECUADOR_SERVICES_ADMIN_EMAIL = "admin.andina@example.com"
ECUADOR_SHOP_ADMIN_EMAIL = "admin.quito@example.com"


def ensure_demo_staff(
    session: Session,
    issuer: Issuer,
    services: Issuer | None = None,
    *,
    ecuador: tuple[Issuer, Issuer] | None = None,
) -> list[StaffMember]:
    """The demo staff members, created when missing (idempotent); flushes. With the demo
    telecom provider (`services`), its admin too; with the Ecuadorian demo (`ecuador`: its
    telecom provider and its shop), their admins."""
    wanted = [
        (OPERATOR_EMAIL, StaffRole.OPERATOR, None, None),
        (ADMIN_EMAIL, StaffRole.ISSUER_ADMIN, issuer, None),
        (BRANCH_EMAIL, StaffRole.BRANCH_STAFF, issuer, issuer.branches[0]),
    ]
    if services is not None:
        wanted.append((SERVICES_ADMIN_EMAIL, StaffRole.ISSUER_ADMIN, services, None))
    if ecuador is not None:
        telecom, shop = ecuador
        wanted.append((ECUADOR_SERVICES_ADMIN_EMAIL, StaffRole.ISSUER_ADMIN, telecom, None))
        wanted.append((ECUADOR_SHOP_ADMIN_EMAIL, StaffRole.ISSUER_ADMIN, shop, None))
    members = []
    for email, role, owner, branch in wanted:
        member = session.scalar(select(StaffMember).where(StaffMember.email == email))
        if member is None:
            member = create_staff(session, email, role, owner, branch, password=STAFF_PASSWORD)
        members.append(member)
    return members
