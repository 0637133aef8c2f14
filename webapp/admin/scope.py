"""Every back-office query is scoped: to the staff member's issuer, and for branch staff to
their branch. The platform operator picks the issuer to act on (/admin/emisores).

Views get objects through these functions only, so an id of another issuer's object is a 404,
whatever the URL says.
"""

from __future__ import annotations

from flask import abort, session
from sqlalchemy import Select, select

from webapp.admin.auth import current_staff
from webapp.extensions import db
from webapp.models import Branch, Invoice, Issuer, StaffMember, StaffRole

ISSUER_KEY = "admin_issuer"


def member() -> StaffMember:
    staff = current_staff()
    if staff is None:  # views are behind staff_required; this is a programming error
        abort(403)
    return staff


def issuer_or_none() -> Issuer | None:
    """The issuer the signed-in staff acts on: their own, or the operator's pick."""
    staff = member()
    if staff.role is not StaffRole.OPERATOR:
        return staff.issuer
    issuer_id = session.get(ISSUER_KEY)
    return db.session.get(Issuer, issuer_id) if isinstance(issuer_id, int) else None


def issuer() -> Issuer:
    """As issuer_or_none; 404 when the operator has not picked one (views that need one are
    reached from the issuer picker)."""
    found = issuer_or_none()
    if found is None:
        abort(404)
    return found


def choose_issuer(issuer_id: int) -> Issuer:
    """The operator acts on `issuer_id` from now on (others cannot choose)."""
    if member().role is not StaffRole.OPERATOR:
        abort(403)
    found = db.session.get(Issuer, issuer_id)
    if found is None:
        abort(404)
    session[ISSUER_KEY] = found.id
    return found


def branch_ids() -> list[int] | None:
    """The branches the signed-in staff may see: None for all of the issuer's."""
    staff = member()
    return [staff.branch_id] if staff.role is StaffRole.BRANCH_STAFF else None


def branches_query() -> Select:
    """select(Branch) of the issuer, limited to the staff's branch for branch staff."""
    query = select(Branch).where(Branch.issuer_id == issuer().id)
    if (ids := branch_ids()) is not None:
        query = query.where(Branch.id.in_(ids))
    return query.order_by(Branch.code)


def branch(branch_id: int) -> Branch:
    """A branch in scope, or 404."""
    found = db.session.scalar(branches_query().where(Branch.id == branch_id))
    if found is None:
        abort(404)
    return found


def invoices_query() -> Select:
    """select(Invoice) of the issuer (and the staff's branch), newest first."""
    query = select(Invoice).where(Invoice.issuer_id == issuer().id)
    if (ids := branch_ids()) is not None:
        query = query.where(Invoice.branch_id.in_(ids))
    return query


def invoice(public_id: str) -> Invoice:
    """An invoice in scope by its public id, or 404."""
    found = db.session.scalar(invoices_query().where(Invoice.public_id == public_id))
    if found is None:
        abort(404)
    return found
