"""Whose panel lists an invoice.

An RFC alone proves nothing (it is printed on every invoice), so an invoice to RFC X belongs
to the account with RFC X that asked for it or, failing that, to the account with RFC X whose
verified address it was delivered to. `claim_delivered` runs when an account verifies an
address, for the invoices delivered there before.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from webapp.models import Account, Invoice


def ids_of(account: Account) -> list[str]:
    """The tax ids an account's invoices are made to: its RFC; an Ecuadorian's cédula or
    passport (Account.id_document, whose RFC is the generic foreign one) and, for a cédula,
    the persona natural's RUC (the cédula and 001)."""
    ids = [account.rfc]
    if account.id_document:
        ids += [account.id_document, f"{account.id_document}001"]
    return ids


def _holding(receptor_rfc: str):
    """The accounts whose invoices to `receptor_rfc` are theirs (ids_of, in SQL)."""
    natural = len(receptor_rfc) == 13 and receptor_rfc.isdigit() and receptor_rfc.endswith("001")
    natural_ruc = receptor_rfc[:-3] if natural else None
    return or_(
        Account.rfc == receptor_rfc,
        Account.id_document == receptor_rfc,
        *((Account.id_document == natural_ruc,) if natural_ruc else ()),
    )


def owner_of(
    session: Session, receptor_rfc: str, email: str | None, account_id: int | None
) -> int | None:
    """The account that will list an invoice to `receptor_rfc` delivered to `email`."""
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is not None and receptor_rfc in ids_of(account):
            return account.id
    if email:
        return session.scalar(
            select(Account.id)
            .where(
                _holding(receptor_rfc),
                Account.email == email.lower(),
                Account.email_verified_at.is_not(None),
            )
            .limit(1)
        )
    return None


def claim_delivered(session: Session, account: Account) -> int:
    """Give `account` the unowned invoices to its ids (ids_of) delivered to its (verified)
    address."""
    if account.email_verified_at is None:
        return 0
    return session.execute(
        update(Invoice)
        .where(
            Invoice.account_id.is_(None),
            Invoice.receptor_rfc.in_(ids_of(account)),
            func.lower(Invoice.delivery_email) == account.email,
        )
        .values(account_id=account.id)
        .execution_options(synchronize_session=False)
    ).rowcount
