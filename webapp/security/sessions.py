"""Sessions kept on the server (no Flask): opened at sign-in, deleted at sign-out.

The browser's cookie holds a random token; the `signed_session` row holds its SHA-256. A
session is valid while its row exists (and the subject's session version still matches, as
before), so "Salir" really ends it: a copy of the cookie replayed afterwards is anonymous.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from webapp.models import Account, SignedSession, StaffMember


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _owner(subject: Account | StaffMember) -> dict:
    if isinstance(subject, StaffMember):
        return {"staff_id": subject.id}
    return {"account_id": subject.id}


def open_session(
    session: Session, subject: Account | StaffMember, now: datetime, max_age: timedelta
) -> str:
    """A new server-side session for `subject`; returns the token for the cookie. Sessions
    older than `max_age` (of anyone) are swept away on the way."""
    session.execute(delete(SignedSession).where(SignedSession.created_at < now - max_age))
    token = secrets.token_urlsafe(32)
    session.add(SignedSession(id=digest(token), created_at=now, **_owner(subject)))
    return token


def end(session: Session, token: str | None) -> None:
    """End the session of `token` (nothing when there is none)."""
    if token:
        session.execute(delete(SignedSession).where(SignedSession.id == digest(token)))


def end_all(session: Session, subject: Account | StaffMember) -> None:
    """End every session of `subject` (sign out everywhere, a password changed)."""
    column, value = next(iter(_owner(subject).items()))
    session.execute(delete(SignedSession).where(getattr(SignedSession, column) == value))


def load(
    session: Session, model: type[Account] | type[StaffMember], subject_id: int, token: str
) -> Account | StaffMember | None:
    """The subject `subject_id` if the session of `token` is still open (one query)."""
    owner = SignedSession.staff_id if model is StaffMember else SignedSession.account_id
    return session.scalar(
        select(model)
        .join(SignedSession, owner == model.id)
        .where(model.id == subject_id, SignedSession.id == digest(token))
    )
