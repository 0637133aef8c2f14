"""Branches the roads make for themselves: the billing branch of a services issuer (its
bills' sales), the platform issuer's branch of the merchants' payments."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import Branch, Issuer


def ensure_branch(session: Session, issuer: Issuer, code: str, name: str) -> int:
    """The id of the issuer's branch `code`, created (named `name`, at the issuer's CP) when
    missing; commits. Two processes creating it at once make one (the unique code)."""
    query = select(Branch.id).where(Branch.issuer_id == issuer.id, Branch.code == code)
    if (found := session.scalar(query)) is not None:
        return found
    try:
        session.add(
            Branch(issuer_id=issuer.id, code=code, name=name, cp=issuer.cp, address="", active=True)
        )
        session.commit()
    except IntegrityError:  # made meanwhile by another process
        session.rollback()
    return session.scalar(query)
