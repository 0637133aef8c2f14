"""Avisos de privacidad (seed 003, PASO 2): the platform's, which every issuer's staff accept
before the back office opens, and each issuer's own for its customers.

A notice is versioned: publishing a new text adds a version (the newest, by id, is the
current one); staff who accepted an older one are asked again. Each acceptance is kept: who,
which version, when and from which address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import PrivacyAcceptance, PrivacyNotice, StaffMember, StaffRole


def current(session: Session, issuer_id: int | None = None) -> PrivacyNotice | None:
    """The newest version of the platform's notice (`issuer_id` None) or of an issuer's."""
    query = select(PrivacyNotice).order_by(PrivacyNotice.id.desc()).limit(1)
    query = query.where(
        PrivacyNotice.issuer_id.is_(None)
        if issuer_id is None
        else PrivacyNotice.issuer_id == issuer_id
    )
    return session.scalar(query)


def current_id(session: Session) -> int | None:
    """The id of the platform's current notice (one small query per back-office page)."""
    return session.scalar(
        select(func.max(PrivacyNotice.id)).where(PrivacyNotice.issuer_id.is_(None))
    )


def must_accept(member: StaffMember) -> bool:
    """Issuer staff accept the platform's notice; the platform operator does not."""
    return member.role is not StaffRole.OPERATOR


def has_accepted(session: Session, staff_id: int, notice_id: int) -> bool:
    return (
        session.scalar(
            select(PrivacyAcceptance.id).where(
                PrivacyAcceptance.staff_id == staff_id, PrivacyAcceptance.notice_id == notice_id
            )
        )
        is not None
    )


def accept(
    session: Session, member: StaffMember, notice: PrivacyNotice, ip: str, now: datetime
) -> PrivacyAcceptance:
    """Store that `member` accepted `notice` (the caller commits). Accepting twice keeps the
    first acceptance."""
    found = session.scalar(
        select(PrivacyAcceptance).where(
            PrivacyAcceptance.staff_id == member.id, PrivacyAcceptance.notice_id == notice.id
        )
    )
    if found is not None:
        return found
    acceptance = PrivacyAcceptance(
        staff_id=member.id, notice_id=notice.id, accepted_at=now, ip=(ip or "")[:45]
    )
    try:
        with session.begin_nested():
            session.add(acceptance)
    except IntegrityError:  # the same person accepted in another tab at the same moment
        return session.scalars(
            select(PrivacyAcceptance).where(
                PrivacyAcceptance.staff_id == member.id, PrivacyAcceptance.notice_id == notice.id
            )
        ).one()
    return acceptance


def publish(session: Session, issuer_id: int | None, body: str, now: datetime) -> PrivacyNotice:
    """A new version of a notice (the caller commits): version "1", "2", … per owner."""
    count = session.scalar(
        select(func.count(PrivacyNotice.id)).where(
            PrivacyNotice.issuer_id.is_(None)
            if issuer_id is None
            else PrivacyNotice.issuer_id == issuer_id
        )
    )
    notice = PrivacyNotice(
        issuer_id=issuer_id, version=str(count + 1), body=body.strip(), published_at=now
    )
    session.add(notice)
    session.flush()
    return notice
