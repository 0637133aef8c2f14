"""The platform operator's own business with its clients, the issuers (seed 003, issue #17):
its products and prices, each issuer's subscription and stamp credits (an append-only ledger
with the running balance), the privacy notices and who accepted them, the payment slips
(constancias de pago) with their lines, proofs and confirmation, and the operator's bank
details."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, Money, UTCDateTime, status_enum, utcnow
from webapp.models.invoice import new_public_id
from webapp.models.issuer import Issuer


class ProductKind(enum.StrEnum):
    LICENCE = "licence"  # annual licence of a level: extends the subscription by `months`
    STAMPS = "stamps"  # a package of `stamps` credits
    DESIGN = "design"  # a special invoice design (renewed yearly with the licence)
    UPGRADE = "upgrade"  # a version upgrade (once)


class Product(Base):
    """An item of the operator's catalog: code, description and price before IVA."""

    __tablename__ = "platform_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    description: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ProductKind] = mapped_column(status_enum(ProductKind, "product_kind"))
    price: Mapped[Decimal] = mapped_column(Money)  # before IVA
    months: Mapped[int] = mapped_column(default=0)  # LICENCE: months it extends
    stamps: Mapped[int] = mapped_column(default=0)  # STAMPS: credits it adds
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    """A product an issuer has and renews (its licence level, its special designs)."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("issuer_id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("platform_product.id"))
    quantity: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    product: Mapped[Product] = relationship()


class StampMovement(Base):
    """One movement of an issuer's stamp credits, never updated nor deleted: `delta` (−1 a
    stamp, +1 its refund when the stamp failed, +N a package), `balance` after it."""

    __tablename__ = "stamp_ledger"
    __table_args__ = (Index("ix_stamp_ledger_issuer_id_id", "issuer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id", ondelete="CASCADE"))
    delta: Mapped[int]
    balance: Mapped[int]
    reason: Mapped[str] = mapped_column(String(20))  # stamp, refund, purchase, adjustment
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="SET NULL"))
    slip_id: Mapped[int | None] = mapped_column(ForeignKey("payment_slip.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivacyNotice(Base):
    """A version of an aviso de privacidad: the platform's for issuer staff (issuer_id None)
    or an issuer's for its customers."""

    __tablename__ = "privacy_notice"
    __table_args__ = (UniqueConstraint("issuer_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int | None] = mapped_column(ForeignKey("issuer.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivacyAcceptance(Base):
    """Who accepted which notice, when and from where."""

    __tablename__ = "privacy_acceptance"
    __table_args__ = (UniqueConstraint("staff_id", "notice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"))
    notice_id: Mapped[int] = mapped_column(ForeignKey("privacy_notice.id", ondelete="CASCADE"))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(45), default="")


class SlipStatus(enum.StrEnum):
    PENDING = "pending"  # generated, waiting for the payment
    PROOF = "proof"  # the merchant uploaded a proof of payment
    CONFIRMED = "confirmed"  # the operator confirmed it: products applied, CFDI issued
    CANCELLED = "cancelled"


class PaymentSlip(Base):
    """A constancia de pago: what the merchant pays for, and the reference the bank gets."""

    __tablename__ = "payment_slip"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[SlipStatus] = mapped_column(
        status_enum(SlipStatus, "slip_status"), default=SlipStatus.PENDING
    )
    subtotal: Mapped[Decimal] = mapped_column(Money)
    iva: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_member.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The proof of payment, stored outside the web root (PROOFS_DIR/<name>).
    proof_name: Mapped[str | None] = mapped_column(String(80))
    proof_type: Mapped[str | None] = mapped_column(String(40))
    proof_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_member.id", ondelete="SET NULL")
    )
    # The platform's own CFDI to the merchant for this payment.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="SET NULL"))
    # Shown to the merchant's staff once, at the next sign-in after the confirmation.
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    issuer: Mapped[Issuer] = relationship()
    lines: Mapped[list[SlipLine]] = relationship(
        back_populates="slip", order_by="SlipLine.position", cascade="all, delete-orphan"
    )


class SlipLine(Base):
    __tablename__ = "payment_slip_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    slip_id: Mapped[int] = mapped_column(ForeignKey("payment_slip.id", ondelete="CASCADE"))
    position: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("platform_product.id"))
    code: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    included: Mapped[bool] = mapped_column(default=True)

    slip: Mapped[PaymentSlip] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class PlatformSettings(Base):
    """The operator's own data (one row): who merchants pay and which issuer is the
    platform's own (its CFDI to the merchants)."""

    __tablename__ = "platform_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary: Mapped[str] = mapped_column(String(200), default="")
    bank: Mapped[str] = mapped_column(String(80), default="")
    account: Mapped[str] = mapped_column(String(20), default="")
    clabe: Mapped[str] = mapped_column(String(18), default="")
    banks: Mapped[str] = mapped_column(String(300), default="")  # where to pay, comma-separated
    platform_issuer_id: Mapped[int | None] = mapped_column(
        ForeignKey("issuer.id", ondelete="SET NULL")
    )
    grace_days: Mapped[int] = mapped_column(default=15)
    low_credit_thresholds: Mapped[str] = mapped_column(String(60), default="100,20,0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
