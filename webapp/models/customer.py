"""A customer's fiscal profile: the Receptor data of the invoices they ask for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow


class CustomerProfile(Base):
    """The fiscal data an account invoices with (one per account, for the account's RFC)."""

    __tablename__ = "customer_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), unique=True
    )
    rfc: Mapped[str] = mapped_column(String(13), index=True)
    name: Mapped[str] = mapped_column(String(254))
    cp: Mapped[str] = mapped_column(String(5))
    regimen_fiscal: Mapped[str] = mapped_column(String(3))
    uso_cfdi: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    emails: Mapped[list[DeliveryEmail]] = relationship(
        back_populates="profile", order_by="DeliveryEmail.id", cascade="all, delete-orphan"
    )


class DeliveryEmail(Base):
    """An address the profile's invoices are delivered to."""

    __tablename__ = "delivery_email"
    __table_args__ = (UniqueConstraint("profile_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("customer_profile.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))

    profile: Mapped[CustomerProfile] = relationship(back_populates="emails")
