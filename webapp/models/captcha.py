"""Captcha tokens already answered: a token is good for one attempt only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class CaptchaUse(Base):
    """The nonce of a captcha token that was submitted, kept until the token expires anyway."""

    __tablename__ = "captcha_use"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
