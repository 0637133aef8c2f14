"""The renewal quote (seed 003, PASO 3): the issuer's subscribed products with their costs,
the merchant ticks what to renew, and the totals.

Money is Decimal. IVA is 16 % of the subtotal rounded to cents half up (ROUND_HALF_UP), as
SAT's rules round the CFDI's taxes (Anexo 20: the amount is rounded to the currency's
decimals, from 5 up): round(subtotal × 0.16, 2). A product's amount is price × quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Issuer, Product, Subscription
from webapp.models.platform import ProductKind

IVA_RATE = Decimal("0.16")
CENT = Decimal("0.01")
DUE_DAYS = 30  # the quote shows itself this many days before the licence expires


@dataclass(frozen=True)
class QuoteLine:
    product_id: int
    code: str
    description: str
    quantity: int
    price: Decimal  # before IVA
    amount: Decimal  # price × quantity
    included: bool


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    iva: Decimal
    total: Decimal


def iva_of(subtotal: Decimal) -> Decimal:
    """16 % of `subtotal`, rounded to cents half up."""
    return (Decimal(subtotal) * IVA_RATE).quantize(CENT, ROUND_HALF_UP)


def totals_of(amounts) -> Totals:
    subtotal = sum((Decimal(a) for a in amounts), Decimal("0")).quantize(CENT, ROUND_HALF_UP)
    iva = iva_of(subtotal)
    return Totals(subtotal, iva, subtotal + iva)


def lines(session: Session, issuer: Issuer, chosen: set[int] | None = None) -> list[QuoteLine]:
    """The issuer's subscribed, active products (licence first, then by code); `chosen` the
    product ids ticked (None: all of them)."""
    rows = session.execute(
        select(Subscription, Product)
        .join(Product, Subscription.product_id == Product.id)
        .where(Subscription.issuer_id == issuer.id, Product.active.is_(True))
        .order_by(Product.kind != ProductKind.LICENCE, Product.code)
    ).all()
    out = []
    for subscription, product in rows:
        quantity = max(subscription.quantity or 1, 1)
        price = Decimal(product.price).quantize(CENT, ROUND_HALF_UP)
        out.append(
            QuoteLine(
                product_id=product.id,
                code=product.code,
                description=product.description,
                quantity=quantity,
                price=price,
                amount=(price * quantity).quantize(CENT, ROUND_HALF_UP),
                included=chosen is None or product.id in chosen,
            )
        )
    return out


def totals(quote: list[QuoteLine]) -> Totals:
    """SUBTOTAL, IVA and TOTAL of the ticked lines."""
    return totals_of(line.amount for line in quote if line.included)


def days_left(issuer: Issuer, now: datetime) -> int | None:
    """Whole days until the licence expires (negative: expired); None without a licence."""
    if issuer.licence_expires_at is None:
        return None
    return (issuer.licence_expires_at - now).days


def is_due(issuer: Issuer, now: datetime, days: int = DUE_DAYS) -> bool:
    """Whether the licence expires within `days` days, or has expired."""
    expires = issuer.licence_expires_at
    return expires is not None and expires - now <= timedelta(days=days)


def parse_chosen(values) -> set[int]:
    """Product ids from a form's "producto" values (anything else is ignored)."""
    return {int(v) for v in values if str(v).isdigit() and len(str(v)) < 10}
