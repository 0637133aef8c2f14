"""What every Mis servicios view needs: the services issuer of the URL, and the signed-in
holder who has accepted its current terms."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp.billing import terms
from webapp.extensions import db
from webapp.models import Account, Issuer


def services_issuer(slug: str) -> Issuer:
    """The services issuer of `slug` (404 for an unknown slug, a retail issuer or one whose
    onboarding is pending)."""
    issuer = g.get("services_issuer")
    if issuer is None or issuer.slug != slug:
        issuer = db.session.scalar(
            select(Issuer).where(
                Issuer.slug == slug,
                Issuer.kind == "services",
                Issuer.onboarding_pending.is_(False),  # not offered until its checklist is done
            )
        )
        if issuer is None:
            abort(404)
        g.services_issuer = issuer
    return issuer


def holder() -> Account:
    """The signed-in account (only inside a view behind `holder_required`)."""
    return current_user.account


def holder_required(view):
    """Signed in (else to the sign-in page, back here afterwards) and the issuer's current
    terms accepted (else to the terms page, which records the acceptance)."""

    @wraps(view)
    def wrapped(slug: str, *args, **kwargs):
        issuer = services_issuer(slug)
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.sign_in", next=request.full_path.rstrip("?")), 303)
        if terms.pending(db.session, current_user.account.id, issuer.id) is not None:
            return redirect(
                url_for("myservices.terms", slug=slug, next=request.full_path.rstrip("?")), 303
            )
        return view(slug, *args, **kwargs)

    return wrapped
