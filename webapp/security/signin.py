"""The one sign-in: customers, staff and any later console go through `attempt`.

A door says who signs in there (how an identifier finds its subject, what else a subject
needs to be let in); everything else is the same at every door, in this order:

1. the identifier is normalised (`lockout.normalize_identifier`) and looked up;
2. the lock or throttle: its owner, who may type the right password, is told at once (only
   someone who solved captchas for each failure could have locked it);
3. the captcha, when this browser or the subject has failed often enough: before the
   password is checked or a failure counted (an answer is spent only when it is required);
4. exactly one argon2 verification, against the subject's hash or a dummy one, so that an
   unknown identifier, a subject that needs the captcha and a known one cost the same;
5. success clears the failures; a failure is audited (unknown identifiers too) and counted
   atomically, and the failure that locks tells the caller to warn the owner.

No Flask here: the caller passes the database session, whether the captcha was solved, and
an audit function (the web edge is `webapp.security.gate`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from webapp.security import lockout, passwords
from webapp.security.policy import SecurityPolicy


class Subject(Protocol):
    """A customer's account, a staff member, an operator: whatever signs in."""

    id: int
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None

    @property
    def verified(self) -> bool: ...


@dataclass(frozen=True)
class Door:
    """Who signs in at one door.

    `find(session, identifier)` gets the normalised identifier and returns the subject or
    None; `admits(subject, now)` is what a subject with the right password must also be (a
    verified account, an unexpired temporary password...). `name` keys the per-subject rate
    limit, so that the same person counts once however the identifier is spelt.
    """

    name: str
    find: Callable[[Session, str], Any]
    admits: Callable[[Any, datetime], bool] = field(default=lambda subject, now: subject.verified)

    def lookup(self, session: Session, identifier: str | None) -> Any:
        normalized = lockout.normalize_identifier(identifier)
        return self.find(session, normalized) if normalized else None

    def limit_key(self, session: Session, identifier: str | None) -> str:
        """The key of the per-subject rate limit: the subject when one is found, else the
        normalised identifier."""
        subject = self.lookup(session, identifier)
        if subject is not None:
            return f"signin:{self.name}:id:{subject.id}"
        return f"signin:{self.name}:{lockout.normalize_identifier(identifier)}"


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    REFUSED = "refused"  # wrong identifier or password, or a subject not admitted: one answer
    CAPTCHA = "captcha"  # the captcha this browser was shown was not solved
    LOCKED = "locked"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    subject: Any = None  # the subject signed in, or the one this failure locked
    locked_now: bool = False  # this failure locked or throttled the subject: warn its owner


Audit = Callable[[str, Any], None]  # audit(event, subject or None)


def needs_captcha(policy: SecurityPolicy, browser_failures: int) -> bool:
    """Whether this browser is shown the captcha (after its own failures)."""
    threshold = policy.captcha_after_failures
    return bool(threshold) and browser_failures >= threshold


def attempt(
    session: Session,
    door: Door,
    policy: SecurityPolicy,
    identifier: str | None,
    password: str,
    *,
    browser_failures: int,
    captcha_solved: Callable[[], bool],
    audit: Audit,
    now: datetime,
) -> Result:
    """One sign-in attempt, in the order of the module's docstring. The caller commits.

    `captcha_solved` is called at most once, and only when the captcha is required (a token
    is good for one try, so it must not be spent when it is not needed).
    """
    subject = door.lookup(session, identifier)
    threshold = policy.captcha_after_failures
    shown = needs_captcha(policy, browser_failures)
    required = shown or (
        bool(threshold) and subject is not None and subject.failed_logins >= threshold
    )
    if lockout.is_locked(subject, now):
        return Result(Outcome.LOCKED)
    if required and not captcha_solved():
        passwords.verify_password(None, password)  # the same cost as a real check
        return Result(Outcome.CAPTCHA if shown else Outcome.REFUSED)
    ok, rehashed = passwords.verify_password(
        subject.password_hash if subject is not None else None, password
    )
    if ok and door.admits(subject, now):
        if rehashed:
            subject.password_hash = rehashed
        lockout.clear(subject)
        audit("signin", subject)
        return Result(Outcome.SIGNED_IN, subject)
    audit("signin_failed", subject)
    locked_now = False
    if subject is not None and subject.verified:
        locked_now = lockout.count_failure(subject, policy, now)
        if locked_now:
            audit("locked", subject)
    return Result(Outcome.REFUSED, subject if locked_now else None, locked_now)
