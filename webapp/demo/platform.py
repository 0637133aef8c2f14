"""The platform operator's demo (issue #17, seed 003): its product catalog, its bank details,
its own issuer (whose CFDI the merchants get for their payments), its privacy notice, and the
demo merchant's subscription: a licence expiring in 10 days (so a newcomer sees the renewal
quote at the first sign-in), two special invoice designs, a package of 100 stamps, and 419
stamp credits.

    result = load_platform_demo(session, fernet, merchant, now)   # idempotent; commits
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.cfdi.testcsd import make_test_csd
from webapp.csd import store_csd
from webapp.issuing import credits
from webapp.models import (
    Branch,
    Issuer,
    PlatformSettings,
    PrivacyNotice,
    Product,
    ProductKind,
    Subscription,
)

PLATFORM_SLUG = "autofactura-plataforma"
PLATFORM_RFC = "EKU9003173C9"  # one of SAT's test RFCs
PLATFORM_NAME = "AUTOFACTURA PLATAFORMA DEMO"
PLATFORM_CP = "06600"
BENEFICIARY = "Autofactura Plataforma Demo S.A. de C.V."
BANK = "BBVA Bancomer"
ACCOUNT = "0101641637"
CLABE = "012180001016416375"  # demo; its check digit is valid (clabe package)
BANKS = "BBVA Bancomer,Banco del Bajío,HSBC,Santander,Banamex,Scotiabank,Banorte"
PRIVACY_VERSION = "2026-01"
PRIVACY_TEXT = """Aviso de privacidad para los comercios (versión {version})

Autofactura Plataforma Demo S.A. de C.V. trata los datos de su comercio y de su personal
(nombre, correo electrónico, RFC, datos fiscales, registros de acceso) para prestarle el
servicio de facturación electrónica, emitir sus comprobantes, cobrar sus renovaciones y
cumplir obligaciones fiscales. No los vendemos ni los cedemos salvo a su proveedor de
certificación (PAC) y a las autoridades que la ley señala. Puede ejercer sus derechos ARCO
escribiendo a privacidad@example.com.

Este es un texto de demostración."""

# (code, description, kind, price before IVA, months, stamps)
PRODUCTS = (
    ("105077", "Anualidad NIVEL 1", ProductKind.LICENCE, "550.00", 12, 0),
    ("105078", "Anualidad NIVEL 2", ProductKind.LICENCE, "900.00", 12, 0),
    ("SP0800", "Actualización 4.0 NIVEL 1", ProductKind.UPGRADE, "575.00", 0, 0),
    ("DIS100", "Diseño especial de factura", ProductKind.DESIGN, "1800.00", 0, 0),
    ("TIM100", "Paquete de 100 timbres", ProductKind.STAMPS, "150.00", 0, 100),
    ("TIM500", "Paquete de 500 timbres", ProductKind.STAMPS, "600.00", 0, 500),
)
MERCHANT_CREDITS = 419  # the seed's "Timbres disponibles: 419"
LICENCE_DAYS_LEFT = 10


@dataclass(frozen=True)
class PlatformDemo:
    created: bool
    platform: Issuer
    products: int


def _products(session: Session) -> dict[str, Product]:
    found = {p.code: p for p in session.scalars(select(Product))}
    for code, description, kind, price, months, stamps in PRODUCTS:
        if code not in found:
            found[code] = Product(
                code=code,
                description=description,
                kind=kind,
                price=Decimal(price),
                months=months,
                stamps=stamps,
            )
            session.add(found[code])
    session.flush()
    return found


def _platform_issuer(session: Session, fernet: Fernet, now: datetime) -> Issuer:
    issuer = session.scalar(select(Issuer).where(Issuer.slug == PLATFORM_SLUG))
    if issuer is not None:
        return issuer
    issuer = Issuer(
        slug=PLATFORM_SLUG,
        rfc=PLATFORM_RFC,
        legal_name=PLATFORM_NAME,
        regimen_fiscal="601",
        cp=PLATFORM_CP,
        serie="PLA",
    )
    password = secrets.token_urlsafe(18)
    certificate, key = make_test_csd(PLATFORM_RFC, PLATFORM_NAME, password, now=now)
    store_csd(issuer, certificate, key, password, fernet)
    issuer.branches = [Branch(code="PLATAFORMA", name="Plataforma", cp=PLATFORM_CP, address="")]
    session.add(issuer)
    session.flush()
    return issuer


def load_platform_demo(
    session: Session, fernet: Fernet, merchant: Issuer, now: datetime | None = None
) -> PlatformDemo:
    """The operator's catalog, settings, own issuer and privacy notice, and the demo
    merchant's subscription (licence 10 days from `now`, designs, 419 credits). Idempotent:
    a second call changes nothing."""
    now = now or datetime.now(UTC)
    settings = session.scalar(select(PlatformSettings).order_by(PlatformSettings.id).limit(1))
    if settings is not None and settings.platform_issuer_id is not None:
        platform = session.get(Issuer, settings.platform_issuer_id)
        return PlatformDemo(False, platform, len(session.scalars(select(Product.id)).all()))
    products = _products(session)
    platform = _platform_issuer(session, fernet, now)
    if settings is None:
        settings = PlatformSettings()
        session.add(settings)
    settings.beneficiary, settings.bank, settings.account = BENEFICIARY, BANK, ACCOUNT
    settings.clabe, settings.banks = CLABE, BANKS
    settings.platform_issuer_id = platform.id
    if session.scalar(select(PrivacyNotice).where(PrivacyNotice.issuer_id.is_(None))) is None:
        session.add(
            PrivacyNotice(
                issuer_id=None,
                version=PRIVACY_VERSION,
                body=PRIVACY_TEXT.format(version=PRIVACY_VERSION),
                published_at=now,
            )
        )
    if merchant.licence_expires_at is None:
        merchant.licence_expires_at = (now + timedelta(days=LICENCE_DAYS_LEFT)).replace(
            microsecond=0
        )
        session.add_all(
            [
                Subscription(issuer_id=merchant.id, product_id=products["105077"].id),
                Subscription(issuer_id=merchant.id, product_id=products["DIS100"].id, quantity=2),
                Subscription(issuer_id=merchant.id, product_id=products["TIM100"].id),
            ]
        )
    if merchant.stamp_credits is None:  # credits.add makes it metered
        session.flush()  # what changed above, before add() reloads the issuer's row
        credits.add(session, merchant, MERCHANT_CREDITS, "purchase", note="Saldo inicial (demo)")
    session.commit()
    return PlatformDemo(True, platform, len(products))
