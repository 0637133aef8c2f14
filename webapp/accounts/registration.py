"""Registration with email verification, shared by every registration form: /cuenta/registro
(seed 000: RFC and email; the password is chosen from the emailed link) and a services
issuer's form (seed 002: the person's data and the password; the emailed link activates).

Not a view: the views call these and commit. What the answers reveal is the same everywhere:

- a new address: an account is made and the link is sent to it;
- an address whose registration is incomplete: its link is sent again (at most one per
  SECURITY_RESEND_VERIFICATION_MINUTES), the account unchanged;
- an address whose account is complete: its owner is told by email that someone tried to
  register it (at most RATELIMIT_REGISTERED_NOTICE per address), the account unchanged.

A form decides what to show for each (/cuenta/registro tells the incomplete case apart, as
seed 000 requires; a services issuer's form shows one page for all three).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp import ratelimits
from webapp.extensions import db
from webapp.htmx import is_htmx
from webapp.issuing import ownership
from webapp.mail import queue_mail
from webapp.models import Account
from webapp.ratelimits import Limit
from webapp.security import audit, tokens


class Answer(enum.Enum):
    NEW = "new"  # an account was made; its link is on its way
    INCOMPLETE = "incomplete"  # an unverified account has that address; its link sent again
    EXISTING = "existing"  # a complete account has that address; its owner told


@dataclass(frozen=True)
class Registration:
    answer: Answer
    account: Account


def now() -> datetime:
    return datetime.now(UTC)


def send(
    account: Account, template: str, *, folder: str = "accounts/email", html=False, **context
) -> None:
    """Queue an email to the account (committed with the caller's change): the templates
    `<folder>/<template>.subject.txt`, `.txt` and, with `html`, `.html` as its HTML part."""
    context.update(account=account, base_url=current_app.config["BASE_URL"])
    queue_mail(
        db.session,
        account.email,
        render_template(f"{folder}/{template}.subject.txt", **context).strip(),
        render_template(f"{folder}/{template}.txt", **context),
        html=render_template(f"{folder}/{template}.html", **context) if html else None,
    )


def link(account: Account, endpoint: str, purpose: str = "verify", **values) -> str:
    """The absolute address of `endpoint` with a signed single-use token of `account`."""
    token = tokens.make_token(current_app.config["SECRET_KEY"], purpose, account)
    return current_app.config["BASE_URL"].rstrip("/") + url_for(endpoint, token=token, **values)


def send_verification(account: Account, deliver: Callable[[Account], None]) -> bool:
    """`deliver` the account's verification email unless one went out less than
    SECURITY_RESEND_VERIFICATION_MINUTES ago; whether it did."""
    moment = now()
    wait = timedelta(minutes=current_app.config["SECURITY_POLICY"].resend_verification_minutes)
    sent = account.last_verification_sent_at
    if sent and moment - sent < wait:
        return False
    account.last_verification_sent_at = moment
    deliver(account)
    return True


def send_account_verification(account: Account) -> None:
    """The verification email of /cuenta/registro: the link to choose a password."""
    send(
        account,
        "verify",
        link=link(account, "accounts.verify"),
        hours=current_app.config["SECURITY_POLICY"].verification_link_hours,
    )


def register(
    email: str,
    new: Callable[[], Account],
    deliver: Callable[[Account], None],
    tell_owner: Callable[[Account], None],
) -> Registration:
    """Register `email` (normalised): `new()` makes the account when the address has none,
    `deliver(account)` sends its verification email (throttled), `tell_owner(account)` tells
    the owner of a complete account (throttled per address). Nothing is committed."""
    account = db.session.scalar(select(Account).where(Account.email == email))
    if account is None:
        account = new()
        try:
            with db.session.begin_nested():  # the same address at once: one account
                db.session.add(account)
                db.session.flush()
        except IntegrityError:
            account = db.session.scalar(select(Account).where(Account.email == email))
        else:
            audit.record("registered", account)
            send_verification(account, deliver)
            return Registration(Answer.NEW, account)
    if not account.verified:
        send_verification(account, deliver)
        return Registration(Answer.INCOMPLETE, account)
    if ratelimits.take(Limit("RATELIMIT_REGISTERED_NOTICE", "registered", account.email)) is None:
        tell_owner(account)
    return Registration(Answer.EXISTING, account)


def account_from_token(purpose: str, token: str, max_age: int) -> Account | None:
    """The account of a valid emailed link; None when altered, expired, or dead (used
    already, or the account changed since)."""
    found = tokens.read_token(current_app.config["SECRET_KEY"], purpose, token, max_age)
    if found is None:
        return None
    account = db.session.get(Account, found[0])
    if account is None or tokens.fingerprint(account) != found[1]:
        return None
    return account


def verification_max_age() -> int:
    return current_app.config["SECURITY_POLICY"].verification_link_hours * 3600


def mark_verified(account: Account, moment: datetime) -> None:
    """The emailed link was followed: the address is verified (which kills the link), and the
    invoices delivered there before are the account's."""
    account.email_verified_at = moment
    account.failed_logins = 0
    ownership.claim_delivered(db.session, account)
    audit.record("verified", account)


def inline_check() -> bool:
    """An inline check of one registration field (htmx, HX-Target campo-*): it sends nothing,
    and the form's rate limit does not count it."""
    return is_htmx() and request.headers.get("HX-Target", "").startswith("campo-")


def inline_field(allowed: tuple[str, ...]) -> str | None:
    """The field an inline check is about, when it is one of `allowed`."""
    name = request.headers.get("HX-Target", "").removeprefix("campo-")
    return name if name in allowed else None
