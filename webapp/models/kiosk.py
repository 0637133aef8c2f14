"""Kiosk terminals: shared touch screens inside a branch, enrolled by staff."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow
from webapp.models.issuer import Branch


def _public_id() -> str:
    return secrets.token_urlsafe(12)


class Kiosk(Base):
    """A browser enrolled as a kiosk of one branch (see webapp.kiosk.devices).

    The device cookie holds `public_id` and a random secret; only the secret's SHA-256 is
    stored. `handoff_nonce` is the one "Continuar en mi teléfono" link of the kiosk that may
    still be used (None: none).
    """

    __tablename__ = "kiosk"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_public_id)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    handoff_nonce: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    branch: Mapped[Branch] = relationship()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.enrolled_at is not None else "pending"
