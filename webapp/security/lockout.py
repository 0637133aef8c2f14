"""Failed sign-ins under the security preset: lock (until recovery) or throttle (minutes).

Shared by customers' accounts and the back office's staff: anything with `failed_logins` and
`locked_until`.

Failures are counted by the database (`failed_logins = failed_logins + 1 ... RETURNING`), and
the lock or throttle is decided from the count it returned: parallel failures each count, so
a burst of wrong passwords locks as surely as the same tries one after another.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, update
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value

from webapp.fiscal.rfc import normalize_rfc
from webapp.security.policy import SecurityPolicy

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)  # locked until recovery


class Lockable(Protocol):
    id: int
    failed_logins: int
    locked_until: datetime | None


def is_locked(subject: Lockable | None, now: datetime) -> bool:
    return subject is not None and subject.locked_until is not None and subject.locked_until > now


def normalize_identifier(value: str | None) -> str:
    """A sign-in identifier as stored: an email stripped and lower-cased, an RFC upper-cased
    without spaces or dashes. The lookup and every per-account limit key use it, so that
    `XOJI-740919U48`, `xoji 740919u48` and `Ingrid@Example.com` count as what they name."""
    value = (value or "").strip()
    return value.lower() if "@" in value else normalize_rfc(value)


def count_failure(subject: Lockable, policy: SecurityPolicy, now: datetime) -> bool:
    """Count a failed sign-in of `subject` (a mapped row, in its session's transaction) with
    one atomic UPDATE, then lock or throttle it by the count the database returned; True when
    this failure locked or throttled it (tell its owner). The caller commits."""
    session = object_session(subject)
    if session is None:
        raise ValueError("count_failure needs a row of a session")
    model = type(subject)
    count = session.execute(
        update(model)
        .where(model.id == subject.id)
        .values(failed_logins=model.failed_logins + 1)
        .returning(model.failed_logins),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    set_committed_value(subject, "failed_logins", count)
    if policy.lock_after_failures and count >= policy.lock_after_failures:
        until = FOREVER
    elif policy.throttle_after_failures and count % policy.throttle_after_failures == 0:
        until = now + timedelta(minutes=policy.throttle_minutes)
    else:
        return False
    # Only one of parallel failures moves the lock on (and has the owner told).
    moved = session.execute(
        update(model)
        .where(
            model.id == subject.id,
            or_(model.locked_until.is_(None), model.locked_until < until),
        )
        .values(locked_until=until),
        execution_options={"synchronize_session": False},
    ).rowcount
    if moved:
        set_committed_value(subject, "locked_until", until)
    return bool(moved)


def clear(subject: Lockable) -> None:
    subject.failed_logins = 0
    subject.locked_until = None
