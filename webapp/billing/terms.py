"""A services issuer's Términos y Condiciones del Servicio: the current version, and whether
an account must accept it (it accepted an older one, or none yet)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import ServiceTerms, TermsAcceptance


def current(session: Session, issuer_id: int) -> ServiceTerms | None:
    """The issuer's newest terms (None: it published none, nothing to accept)."""
    return session.scalar(
        select(ServiceTerms)
        .where(ServiceTerms.issuer_id == issuer_id)
        .order_by(ServiceTerms.published_at.desc(), ServiceTerms.id.desc())
        .limit(1)
    )


def pending(session: Session, account_id: int, issuer_id: int) -> ServiceTerms | None:
    """The current terms when `account_id` has not accepted them, else None."""
    terms = current(session, issuer_id)
    if terms is None:
        return None
    accepted = session.scalar(
        select(TermsAcceptance.id).where(
            TermsAcceptance.account_id == account_id, TermsAcceptance.terms_id == terms.id
        )
    )
    return None if accepted else terms


def accept(session: Session, account_id: int, terms: ServiceTerms, now: datetime) -> None:
    """Record that the account accepted `terms` now (once: a repeat changes nothing)."""
    if session.scalar(
        select(TermsAcceptance.id).where(
            TermsAcceptance.account_id == account_id, TermsAcceptance.terms_id == terms.id
        )
    ):
        return
    with session.begin_nested():  # two tabs accepting at once: the constraint keeps one
        session.add(TermsAcceptance(account_id=account_id, terms_id=terms.id, accepted_at=now))
