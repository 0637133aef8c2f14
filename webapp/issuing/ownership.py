"""Whose panel lists an invoice.

An RFC alone proves nothing (it is printed on every invoice), so an invoice to RFC X belongs
to the account with RFC X that asked for it or, failing that, to the account with RFC X whose
verified address it was delivered to. `claim_delivered` runs when an account verifies an
address, for the invoices delivered there before.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.models import Account, Invoice


def owner_of(
    session: Session, receptor_rfc: str, email: str | None, account_id: int | None
) -> int | None:
    """The account that will list an invoice to `receptor_rfc` delivered to `email`."""
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is not None and account.rfc == receptor_rfc:
            return account.id
    if email:
        return session.scalar(
            select(Account.id)
            .where(
                Account.rfc == receptor_rfc,
                Account.email == email.lower(),
                Account.email_verified_at.is_not(None),
            )
            .limit(1)
        )
    return None


def claim_delivered(session: Session, account: Account) -> int:
    """Give `account` the unowned invoices to its RFC delivered to its (verified) address."""
    if account.email_verified_at is None:
        return 0
    return session.execute(
        update(Invoice)
        .where(
            Invoice.account_id.is_(None),
            Invoice.receptor_rfc == account.rfc,
            func.lower(Invoice.delivery_email) == account.email,
        )
        .values(account_id=account.id)
        .execution_options(synchronize_session=False)
    ).rowcount
