"""The point of sale's side: API keys, idempotent requests, and CSV imports of tickets."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow
from webapp.models.issuer import Issuer


def _public_id() -> str:
    return secrets.token_urlsafe(12)


class ApiKey(Base):
    """A key the issuer's point of sale sends as `Authorization: Bearer <key>`.

    The key is shown once when made; only its SHA-256 is stored (the key is 32 random bytes,
    so a fast hash is enough), with a short `prefix` to tell keys apart in the list.
    """

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    issuer: Mapped[Issuer] = relationship()


class IdempotentRequest(Base):
    """The answer given to an API request with an `Idempotency-Key`, replayed for the same key
    and body; the same key with another body is refused (422)."""

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("issuer_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    key: Mapped[str] = mapped_column(String(255))
    method_path: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))  # of a 201, replayed with it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TicketImport(Base):
    """A CSV of tickets uploaded in the back office, with its row-by-row report (JSON)."""

    __tablename__ = "ticket_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_public_id)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    accepted: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    report: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
