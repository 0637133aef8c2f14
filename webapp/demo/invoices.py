"""A demo customer and a large history of invoices for the panel (`flask demo invoices`).

The history is load-test data: rows with realistic dates, issuers, branches, totals and
states, spread over three years, in serie "H". They are not stamped documents, so they have
no XML or PDF (the panel says so if one is asked for); invoices stamped through the portal
sit beside them with their files.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from webapp.demo.data import demo_issuer
from webapp.models import Account, Branch, Invoice, InvoiceStatus, Issuer
from webapp.security.passwords import hash_password

CUSTOMER_RFC = "XOJI740919U48"
CUSTOMER_NAME = "INGRID XODAR JIMENEZ"
CUSTOMER_EMAIL = "cliente.demo@example.com"
CUSTOMER_PASSWORD = "Gaviota-Demo-2026"  # noqa: S105 (demo data, printed by the command)
SERIE = "H"
YEARS = 3

# Fictional merchants beside the demo issuer, so the panel has issuers to filter by.
OTHER_ISSUERS = (
    ("farmacias-norte", "FDN100415QW3", "FARMACIAS DEMO DEL NORTE", "64000", ("MTY", "SALTILLO")),
    ("ferreteria-sol", "FSO090101AB1", "FERRETERIA DEMO EL SOL", "44100", ("GDL", "ZAPOPAN")),
    ("cafe-puerto", "CDP120720MN5", "CAFETERIAS DEMO DEL PUERTO", "91700", ("VER",)),
)


@dataclass(frozen=True)
class Customer:
    account: Account
    created: bool


def demo_customer(session: Session, now: datetime) -> Customer:
    """The demo customer's verified account (created once; committed by the caller)."""
    account = session.scalar(select(Account).where(Account.email == CUSTOMER_EMAIL))
    if account is not None:
        return Customer(account, False)
    account = Account(
        rfc=CUSTOMER_RFC,
        email=CUSTOMER_EMAIL,
        email_verified_at=now,
        password_hash=hash_password(CUSTOMER_PASSWORD),
        password_changed_at=now,
    )
    session.add(account)
    session.flush()
    return Customer(account, True)


def _issuers(session: Session) -> list[tuple[Issuer, list[Branch]]]:
    found = []
    demo = demo_issuer(session)
    if demo is not None:
        found.append((demo, list(demo.branches)))
    for slug, rfc, name, cp, codes in OTHER_ISSUERS:
        issuer = session.scalar(select(Issuer).where(Issuer.slug == slug))
        if issuer is None:
            issuer = Issuer(slug=slug, rfc=rfc, legal_name=name, regimen_fiscal="601", cp=cp)
            issuer.branches = [
                Branch(code=code, name=code.title(), cp=cp, address="") for code in codes
            ]
            session.add(issuer)
            session.flush()
        found.append((issuer, list(issuer.branches)))
    return found


def _total(rng: random.Random) -> Decimal:
    return Decimal(round(rng.lognormvariate(5.5, 1.1), 2)).quantize(Decimal("0.01")) + 1


def load_invoices(
    session: Session,
    account: Account,
    count: int,
    now: datetime,
    *,
    retention_days: int = 90,
    seed: int = 2026,
    batch: int = 10_000,
    progress=None,
) -> int:
    """Insert `count` history invoices for `account`, newest within the last hour; commits.

    Run again, it adds `count` more: the random sequence (UUIDs included) continues from the
    number of invoices the account already has, so no UUID repeats."""
    already = session.scalar(
        select(func.count()).select_from(Invoice).where(Invoice.account_id == account.id)
    )
    rng = random.Random(f"{seed}:{already}")
    issuers = _issuers(session)
    folios = {
        issuer.id: (
            session.scalar(
                select(func.max(Invoice.folio)).where(
                    Invoice.issuer_id == issuer.id, Invoice.serie == SERIE
                )
            )
            or 0
        )
        for issuer, _ in issuers
    }
    span = timedelta(days=365 * YEARS).total_seconds()
    archive_before = now - timedelta(days=retention_days)
    done = 0
    while done < count:
        rows = []
        for _ in range(min(batch, count - done)):
            issuer, branches = rng.choice(issuers)
            folios[issuer.id] += 1
            fecha = (now - timedelta(seconds=3600 + rng.random() * span)).replace(microsecond=0)
            total = _total(rng)
            subtotal = (total / Decimal("1.16")).quantize(Decimal("0.01"))
            cancelled = rng.random() < 0.03
            archived = fecha < archive_before
            rows.append(
                {
                    "public_id": secrets.token_urlsafe(16),
                    "issuer_id": issuer.id,
                    "branch_id": rng.choice(branches).id,
                    "account_id": account.id,
                    "status": InvoiceStatus.CANCELLED if cancelled else InvoiceStatus.STAMPED,
                    "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
                    "serie": SERIE,
                    "folio": folios[issuer.id],
                    "fecha": fecha,
                    "stamped_at": fecha,
                    "receptor_rfc": account.rfc,
                    "receptor_nombre": CUSTOMER_NAME,
                    "receptor_cp": "76028",
                    "receptor_regimen": "612",
                    "uso_cfdi": "G03",
                    "forma_pago": rng.choice(("01", "04", "28")),
                    "metodo_pago": "PUE",
                    "currency": "MXN",
                    "subtotal": subtotal,
                    "taxes": total - subtotal,
                    "total": total,
                    "archived": archived,
                    "archived_at": archive_before if archived else None,
                    "created_at": fecha,
                    "updated_at": fecha,
                }
            )
        session.execute(insert(Invoice), rows)
        session.commit()
        done += len(rows)
        if progress:
            progress(done)
    return done
