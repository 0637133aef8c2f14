"""The mail outbox: each email is a row written with the change that causes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, status_enum, utcnow


class MailStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until locked_until; reclaimed after that
    SENT = "sent"
    DEAD = "dead"  # gave up after MAIL_MAX_ATTEMPTS; last_error says why


class MailMessage(Base):
    __tablename__ = "mail_message"
    __table_args__ = (Index("ix_mail_message_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    to_addrs: Mapped[str] = mapped_column(Text)  # comma-separated
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(
        status_enum(MailStatus),
        default=MailStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attachments: Mapped[list[MailAttachment]] = relationship(
        back_populates="message", order_by="MailAttachment.id", cascade="all, delete-orphan"
    )


class MailAttachment(Base):
    """A file of a message: its bytes, or, until the worker delivers the message, what makes
    them: the renderer registered under `renderer` (webapp.mail.deferred) given `source_id`
    (an invoice's PDF, rendered at delivery rather than in the commit that queues it). The
    worker stores the bytes it rendered, so a retry sends them without rendering again."""

    __tablename__ = "mail_attachment"
    __table_args__ = (
        CheckConstraint("data IS NOT NULL OR renderer IS NOT NULL", name="data_or_renderer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("mail_message.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    renderer: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[int | None]

    message: Mapped[MailMessage] = relationship(back_populates="attachments")
