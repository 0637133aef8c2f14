"""Failed sign-ins under the security preset: lock (until recovery) or throttle (minutes).

Shared by customers' accounts and the back office's staff: anything with `failed_logins` and
`locked_until`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from webapp.accounts.policy import SecurityPolicy

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)  # locked until recovery


class Lockable(Protocol):
    failed_logins: int
    locked_until: datetime | None


def is_locked(subject: Lockable | None, now: datetime) -> bool:
    return subject is not None and subject.locked_until is not None and subject.locked_until > now


def count_failure(subject: Lockable, policy: SecurityPolicy, now: datetime) -> bool:
    """Count a failed sign-in; True when it locked or throttled `subject` (tell its owner)."""
    subject.failed_logins += 1
    if policy.lock_after_failures and subject.failed_logins >= policy.lock_after_failures:
        subject.locked_until = FOREVER
    elif (
        policy.throttle_after_failures
        and subject.failed_logins % policy.throttle_after_failures == 0
    ):
        subject.locked_until = now + timedelta(minutes=policy.throttle_minutes)
    else:
        return False
    return True


def clear(subject: Lockable) -> None:
    subject.failed_logins = 0
    subject.locked_until = None
