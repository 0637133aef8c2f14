"""The SMS outbox: each text message is a row written with the change that causes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, status_enum, utcnow


class SmsStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until locked_until; reclaimed after that
    SENT = "sent"  # the provider accepted it (provider_id: its id for the message)
    DEAD = "dead"  # refused by the provider, or gave up after SMS_MAX_ATTEMPTS; see last_error


class SmsMessage(Base):
    __tablename__ = "sms_message"
    __table_args__ = (Index("ix_sms_message_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_number: Mapped[str] = mapped_column(String(16))  # E.164: "+" and at most 15 digits
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[SmsStatus] = mapped_column(status_enum(SmsStatus), default=SmsStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
