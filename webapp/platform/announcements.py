"""The message of a confirmed payment (seed 003, PASO 8): once the operator confirms a slip,
the merchant's staff see it once, on the next page after signing in, with the link to the
version-change manual."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Issuer, PaymentSlip
from webapp.models.platform import SlipStatus


def pending_announcement(session: Session, issuer: Issuer) -> PaymentSlip | None:
    """The issuer's oldest confirmed slip not yet shown to its staff."""
    return session.scalar(
        select(PaymentSlip)
        .where(
            PaymentSlip.issuer_id == issuer.id,
            PaymentSlip.status == SlipStatus.CONFIRMED,
            PaymentSlip.announced_at.is_(None),
        )
        .order_by(PaymentSlip.id)
        .limit(1)
    )


def announce(session: Session, slip: PaymentSlip, now: datetime) -> None:
    """Mark `slip` as shown (the caller commits)."""
    slip.announced_at = now
