"""The fiscal profile of a signed-in customer: it fills the receptor data for their RFC.

Stored data of an RFC is shown only to the account it belongs to (an RFC is no secret), so
nothing is filled in for anyone else, whatever RFC they type, and nothing at all on a kiosk.
"""

from __future__ import annotations

import logging

from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.kiosk_context import current as on_kiosk
from webapp.models import Account, CustomerProfile, DeliveryEmail

log = logging.getLogger(__name__)


def _account_for(rfc: str) -> Account | None:
    if on_kiosk() is not None:  # a shared screen: nobody's data, whoever was signed in
        return None
    if current_user.is_authenticated and current_user.account.rfc == rfc:
        return current_user.account
    return None


def fill(form, rfc: str) -> None:
    """Put the signed-in customer's saved data (or at least their email) into the form."""
    account = _account_for(rfc)
    if account is None:
        return
    profile = db.session.scalar(
        select(CustomerProfile).where(CustomerProfile.account_id == account.id)
    )
    form.email.data = profile.emails[0].email if profile and profile.emails else account.email
    if profile is not None:
        form.nombre.data, form.cp.data = profile.name, profile.cp
        form.regimen.data, form.uso_cfdi.data = profile.regimen_fiscal, profile.uso_cfdi


def remember(receptor: Receptor, email: str | None) -> None:
    """Save what a signed-in customer invoiced with, for next time, and commit. Two first
    invoices of one account at once both try to create its profile: the second one's
    savepoint is rolled back and the first one's profile is kept."""
    account = _account_for(receptor.rfc)
    if account is None:
        return
    session = db.session
    try:
        with session.begin_nested():
            profile = session.scalar(
                select(CustomerProfile).where(CustomerProfile.account_id == account.id)
            )
            if profile is None:
                profile = CustomerProfile(account_id=account.id, rfc=receptor.rfc)
                session.add(profile)
            profile.name, profile.cp = receptor.nombre, receptor.cp
            profile.regimen_fiscal, profile.uso_cfdi = receptor.regimen, receptor.uso_cfdi
            if email and email not in {e.email for e in profile.emails}:
                profile.emails.insert(0, DeliveryEmail(email=email))
    except IntegrityError:
        log.info("profile of account %s saved by a concurrent request", account.id)
    session.commit()
