"""The operator's product catalog and each issuer's subscription (issue #17): products with
a unique code, description, kind, price before IVA (two decimals), months (a licence) or
stamps (a package); which products an issuer renews, how many, and its licence's expiry.

Flask-free. Checks answer {field: problem code}; the callers word them. Callers commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from webapp.models import Issuer
from webapp.models.platform import Product, ProductKind, StampMovement, Subscription

CODE_MAX = 20
DESCRIPTION_MAX = 200
PRICE_MAX = Decimal("9999999.99")
MONTHS_MAX = 120
STAMPS_MAX = 10_000_000
QUANTITY_MAX = 999
CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]*")
CENT = Decimal("0.01")

EMPTY, FORMAT, TOO_LONG, TAKEN, RANGE = "empty", "format", "too_long", "taken", "range"


@dataclass(frozen=True)
class ProductData:
    """A product as typed: strings, checked by `check_product`."""

    code: str
    description: str
    kind: str
    price: str
    months: str = "0"
    stamps: str = "0"


def normalize_code(value: str | None) -> str:
    return (value or "").strip().upper()


def parse_price(value: str | None) -> Decimal | None:
    """A price with at most two decimals (commas as thousands separators allowed), or None."""
    text = (value or "").strip().replace(",", "").removeprefix("$").strip()
    if not re.fullmatch(r"\d+(\.\d{1,2})?", text):
        return None
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation:
        return None


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def check_product(
    session: Session, data: ProductData, product: Product | None = None
) -> dict[str, str]:
    """{field: problem} of `data` (for `product` when editing it); {} when it can be saved."""
    problems: dict[str, str] = {}
    code = normalize_code(data.code)
    if not code:
        problems["code"] = EMPTY
    elif len(code) > CODE_MAX:
        problems["code"] = TOO_LONG
    elif not CODE.fullmatch(code):
        problems["code"] = FORMAT
    else:
        query = select(exists().where(Product.code == code))
        if product is not None:
            query = select(exists().where(Product.code == code, Product.id != product.id))
        if session.scalar(query):
            problems["code"] = TAKEN
    description = " ".join((data.description or "").split())
    if not description:
        problems["description"] = EMPTY
    elif len(description) > DESCRIPTION_MAX:
        problems["description"] = TOO_LONG
    if data.kind not in {kind.value for kind in ProductKind}:
        problems["kind"] = EMPTY
    price = parse_price(data.price)
    if not (data.price or "").strip():
        problems["price"] = EMPTY
    elif price is None:
        problems["price"] = FORMAT
    elif price > PRICE_MAX:
        problems["price"] = RANGE
    if data.kind == ProductKind.LICENCE:
        months = _int(data.months)
        if months is None or not 1 <= months <= MONTHS_MAX:
            problems["months"] = RANGE
    if data.kind == ProductKind.STAMPS:
        stamps = _int(data.stamps)
        if stamps is None or not 1 <= stamps <= STAMPS_MAX:
            problems["stamps"] = RANGE
    return problems


def save_product(session: Session, data: ProductData, product: Product | None = None) -> Product:
    """Create (or update `product`) from checked `data`; flushed."""
    kind = ProductKind(data.kind)
    product = product or Product()
    product.code = normalize_code(data.code)
    product.description = " ".join(data.description.split())
    product.kind = kind
    product.price = parse_price(data.price)
    product.months = _int(data.months) if kind is ProductKind.LICENCE else 0
    product.stamps = _int(data.stamps) if kind is ProductKind.STAMPS else 0
    if product.id is None:
        session.add(product)
    session.flush()
    return product


def products(session: Session, active_only: bool = False) -> list[Product]:
    query = select(Product).order_by(Product.active.desc(), Product.code)
    if active_only:
        query = query.where(Product.active.is_(True))
    return list(session.scalars(query))


# --- Subscriptions ---------------------------------------------------------------------------


def subscriptions(session: Session, issuer_id: int) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .join(Product)
            .where(Subscription.issuer_id == issuer_id)
            .order_by(Product.code)
        )
    )


def subscribe(session: Session, issuer: Issuer, product: Product, quantity: int) -> Subscription:
    """`issuer` renews `quantity` of `product` (the quantity replaces an earlier one)."""
    if not 1 <= quantity <= QUANTITY_MAX:
        raise ValueError(f"quantity {quantity} out of 1..{QUANTITY_MAX}")
    found = session.scalar(
        select(Subscription).where(
            Subscription.issuer_id == issuer.id, Subscription.product_id == product.id
        )
    )
    if found is None:
        found = Subscription(issuer_id=issuer.id, product_id=product.id)
        session.add(found)
    found.quantity = quantity
    session.flush()
    return found


def unsubscribe(session: Session, issuer: Issuer, subscription_id: int) -> bool:
    found = session.scalar(
        select(Subscription).where(
            Subscription.id == subscription_id, Subscription.issuer_id == issuer.id
        )
    )
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def set_licence_expiry(issuer: Issuer, when: datetime | None) -> None:
    issuer.licence_expires_at = when


def ledger(session: Session, issuer_id: int, limit: int = 50) -> list[StampMovement]:
    """The newest `limit` movements of the issuer's stamp credits."""
    return list(
        session.scalars(
            select(StampMovement)
            .where(StampMovement.issuer_id == issuer_id)
            .order_by(StampMovement.id.desc())
            .limit(limit)
        )
    )
