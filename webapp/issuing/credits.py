"""Stamp credits: what a metered issuer pays the platform per stamp, and its licence gate.

An issuer whose `stamp_credits` is None is not metered (every issuer made before #17, the
tests' and the demo's): it stamps freely and nothing is written here. A metered issuer (a
number) pays one credit per document sent to be stamped (ticket invoice, service bill,
factura global, replacement, SRI factura): `take` writes the movement (−1, reason "stamp")
in the transaction that reserves the folio, with the issuer's row locked, so concurrent
reservations never spend the same credit and at zero the reservation is refused (`Refused`,
nothing reserved). The rule for a stamp that fails: the failure gives its credit back
(`refund`, +1, reason "refund", in `issue.fail`'s transaction), so a failed invoice never
holds a credit and the reservation that recycles its folio pays again: one credit per
invoice that can reach the PAC, never two.

The ledger (StampMovement, table stamp_ledger) is append-only: every change of
`Issuer.stamp_credits` writes a movement whose `balance` is the new value, so the balance is
always the last movement's.

The licence: an issuer with `licence_expires_at` stamps until that moment plus the
platform's grace period (PlatformSettings.grace_days; DEFAULT_GRACE_DAYS without a settings
row); after it, nothing is reserved either (`Refused("licence_expired")`).

Low-credit warnings: when a stamp brings the balance down to one of the platform's
thresholds (PlatformSettings.low_credit_thresholds, "100,20,0"), one email is queued in the
same transaction to the issuer's active administrators, once per threshold
(Issuer.credit_warned_at_threshold remembers the lowest one warned); credits added above it
(`add`) arm the warnings again. The email itself is rendered by the app (templates), given
here with `set_low_credit_mailer`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.models import Invoice, Issuer, StaffMember, StaffRole
from webapp.models.platform import PlatformSettings, StampMovement

log = logging.getLogger(__name__)

STAMP, REFUND, PURCHASE, ADJUSTMENT = "stamp", "refund", "purchase", "adjustment"
NO_CREDITS, LICENCE_EXPIRED = "no_credits", "licence_expired"
CODES = (NO_CREDITS, LICENCE_EXPIRED)
"""The codes of a refusal: the issuer's account with the platform, not its CSD."""
DEFAULT_GRACE_DAYS = 15
DEFAULT_THRESHOLDS = (100, 20, 0)

# (session, issuer, threshold, balance, recipients) → queues the warning in `session`.
LowCreditMailer = Callable[[Session, Issuer, int, int, list[str]], None]
_mailer: LowCreditMailer | None = None


def set_low_credit_mailer(mailer: LowCreditMailer | None) -> None:
    """The app's warning email (webapp.wiring): rendered from templates, queued in the
    session given."""
    global _mailer
    _mailer = mailer


class Refused(Exception):
    """The issuer may not stamp now. `code`: NO_CREDITS or LICENCE_EXPIRED; `expired_at`:
    when the licence expired (LICENCE_EXPIRED); `reason` is for the log."""

    def __init__(self, code: str, reason: str, expired_at: datetime | None = None):
        super().__init__(reason)
        self.code, self.reason, self.expired_at = code, reason, expired_at


# --- the platform's settings ---------------------------------------------------------------


def _settings(session: Session | None) -> PlatformSettings | None:
    if session is None:
        return None
    return session.scalar(select(PlatformSettings).order_by(PlatformSettings.id).limit(1))


def grace_days(session: Session | None) -> int:
    settings = _settings(session)
    if settings is None or settings.grace_days is None:
        return DEFAULT_GRACE_DAYS
    return max(0, settings.grace_days)


def parse_thresholds(text: str | None) -> tuple[int, ...]:
    """ "100,20,0" → (100, 20, 0): the non-negative integers, highest first; junk ignored."""
    found = set()
    for part in (text or "").split(","):
        part = part.strip()
        if part.isdigit():
            found.add(int(part))
    return tuple(sorted(found, reverse=True))


def thresholds(session: Session | None) -> tuple[int, ...]:
    settings = _settings(session)
    if settings is None:
        return DEFAULT_THRESHOLDS
    return parse_thresholds(settings.low_credit_thresholds)


# --- reading ---------------------------------------------------------------------------------


def balance(issuer: Issuer) -> int | None:
    """The issuer's stamp credits; None when it is not metered."""
    return issuer.stamp_credits


def history(session: Session, issuer_id: int, limit: int = 50) -> list[StampMovement]:
    """The issuer's latest movements, newest first."""
    return list(
        session.scalars(
            select(StampMovement)
            .where(StampMovement.issuer_id == issuer_id)
            .order_by(StampMovement.id.desc())
            .limit(limit)
        )
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def licence_ends(issuer: Issuer, session: Session | None) -> datetime | None:
    """The moment the issuer stops stamping for its licence (expiry plus grace), or None."""
    if issuer.licence_expires_at is None:
        return None
    return _aware(issuer.licence_expires_at) + timedelta(days=grace_days(session))


def refusal(session: Session | None, issuer: Issuer, now: datetime) -> Refused | None:
    """Why the issuer may not stamp now (its licence, then its credits), or None."""
    ends = licence_ends(issuer, session)
    if ends is not None and _aware(now) >= ends:
        return Refused(
            LICENCE_EXPIRED,
            f"the licence of issuer {issuer.rfc} expired on {issuer.licence_expires_at:%Y-%m-%d}"
            " and its grace period is over",
            _aware(issuer.licence_expires_at),
        )
    if issuer.stamp_credits is not None and issuer.stamp_credits <= 0:
        return Refused(NO_CREDITS, f"issuer {issuer.rfc} has no stamp credits left")
    return None


# --- writing ---------------------------------------------------------------------------------


def _lock(session: Session, issuer: Issuer) -> None:
    """The issuer's current credits, its row locked (PostgreSQL; SQLite's write lock is the
    caller's transaction)."""
    session.refresh(
        issuer,
        ["stamp_credits", "credit_warned_at_threshold", "licence_expires_at"],
        with_for_update=True,
    )


def _move(
    session: Session,
    issuer: Issuer,
    delta: int,
    reason: str,
    *,
    invoice_id: int | None = None,
    slip_id: int | None = None,
    note: str = "",
) -> StampMovement:
    issuer.stamp_credits = (issuer.stamp_credits or 0) + delta
    movement = StampMovement(
        issuer_id=issuer.id,
        delta=delta,
        balance=issuer.stamp_credits,
        reason=reason,
        invoice_id=invoice_id,
        slip_id=slip_id,
        note=note[:200],
    )
    session.add(movement)
    return movement


def add(
    session: Session,
    issuer: Issuer,
    n: int,
    reason: str = PURCHASE,
    *,
    slip_id: int | None = None,
    note: str = "",
) -> StampMovement:
    """Add `n` credits (a purchase, an adjustment; negative only for an adjustment) with
    the issuer's row locked; an unmetered issuer becomes metered. The caller commits.
    Warnings above the new balance are armed again."""
    if not isinstance(n, int) or (n <= 0 and reason != ADJUSTMENT):
        raise ValueError(f"credits to add must be a positive whole number, not {n!r}")
    if not session.in_transaction():
        lock_for_write(session)
    _lock(session, issuer)
    movement = _move(session, issuer, n, reason, slip_id=slip_id, note=note)
    warned = issuer.credit_warned_at_threshold
    if warned is not None and issuer.stamp_credits > warned:
        issuer.credit_warned_at_threshold = None
    return movement


def take(session: Session, issuer: Issuer, invoice: Invoice, now: datetime) -> None:
    """One credit for `invoice`, reserved in the caller's transaction, which holds the
    issuer's row locked and the invoice flushed; Refused (the caller rolls back) when the
    issuer may not stamp. Nothing for an unmetered issuer (but its licence is checked)."""
    _lock(session, issuer)
    if problem := refusal(session, issuer, now):
        raise problem
    if issuer.stamp_credits is None:
        return
    before = issuer.stamp_credits
    _move(session, issuer, -1, STAMP, invoice_id=invoice.id)
    _warn(session, issuer, before)


def refund(session: Session, invoice: Invoice) -> StampMovement | None:
    """Give back the credit a failed invoice paid (in `issue.fail`'s transaction): only when
    its movements so far leave it paid (a recycled folio pays again when reserved again)."""
    paid = session.scalar(
        select(func.coalesce(func.sum(StampMovement.delta), 0)).where(
            StampMovement.invoice_id == invoice.id,
            StampMovement.reason.in_((STAMP, REFUND)),
        )
    )
    if not paid or paid >= 0:
        return None
    issuer = session.get(Issuer, invoice.issuer_id)
    _lock(session, issuer)
    if issuer.stamp_credits is None:
        return None
    return _move(session, issuer, -paid, REFUND, invoice_id=invoice.id)


def _warn(session: Session, issuer: Issuer, before: int) -> None:
    after = issuer.stamp_credits
    crossed = [t for t in thresholds(session) if after <= t < before]
    if not crossed:
        return
    threshold = min(crossed)
    warned = issuer.credit_warned_at_threshold
    if warned is not None and warned <= threshold:
        return
    issuer.credit_warned_at_threshold = threshold
    to = list(
        session.scalars(
            select(StaffMember.email)
            .where(
                StaffMember.issuer_id == issuer.id,
                StaffMember.role == StaffRole.ISSUER_ADMIN,
                StaffMember.active,
            )
            .order_by(StaffMember.id)
        )
    )
    if not to:
        log.warning(
            "issuer %s reached %s stamp credits: no administrator to warn", issuer.id, after
        )
        return
    if _mailer is None:
        log.warning("issuer %s reached %s stamp credits: no mailer to warn", issuer.id, after)
        return
    _mailer(session, issuer, threshold, after, to)
