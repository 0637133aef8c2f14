"""The audit log of security events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """Registration, verification, sign-in success and failure, lock, unlock, reset requested
    and used, password changed: when, from which IP and user agent."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_account_id_created_at", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_member.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    device: Mapped[str] = mapped_column(String(32), default="")  # the browser's device cookie
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
