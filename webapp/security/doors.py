"""The doors of the one sign-in (`webapp.security.signin`): who signs in where.

Customers sign in with their RFC (when one verified account has it) or their email; staff
with their email. A later console adds a door here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Account, StaffMember
from webapp.security.policy import SecurityPolicy
from webapp.security.signin import Door

TEMPORARY_PASSWORD_HOURS = 1  # a temporary password (seed preset) is good for one hour


def temporary_expired(account: Account, now: datetime) -> bool:
    return bool(
        account.must_change_password
        and account.password_changed_at
        and now - account.password_changed_at > timedelta(hours=TEMPORARY_PASSWORD_HOURS)
    )


def must_change(account: Account, policy: SecurityPolicy, now: datetime) -> bool:
    """A temporary password, or one older than SECURITY_PASSWORD_MAX_AGE_DAYS."""
    if account.must_change_password:
        return True
    age = policy.password_max_age_days
    return bool(
        age
        and account.password_changed_at
        and now - account.password_changed_at > timedelta(days=age)
    )


def find_account(session: Session, identifier: str) -> Account | None:
    """The account of a normalised email, or of an RFC that one verified account has."""
    if "@" in identifier:
        return session.scalar(select(Account).where(Account.email == identifier))
    found = session.scalars(
        select(Account)
        .where(Account.rfc == identifier, Account.email_verified_at.is_not(None))
        .limit(2)
    ).all()
    return found[0] if len(found) == 1 else None


def find_staff(session: Session, identifier: str) -> StaffMember | None:
    return session.scalar(select(StaffMember).where(StaffMember.email == identifier))


CUSTOMERS = Door(
    "customer",
    find_account,
    admits=lambda account, now: account.verified and not temporary_expired(account, now),
)
STAFF = Door("staff", find_staff)
