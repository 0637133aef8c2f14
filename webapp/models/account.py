"""Accounts: customers (and, later, staff) who sign in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class Account(Base):
    """A person's account. The email is the identity that was verified; the RFC says whose
    invoices the panel shows (an RFC alone never authorises: see PRODUCT.md)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    rfc: Mapped[str] = mapped_column(String(13), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lowercased
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Bumped on password change, reset and "sign out everywhere": older sessions die.
    session_version: Mapped[int] = mapped_column(default=1)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_verification_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_recovery_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Seed preset: a secret question with its answer normalised and hashed (argon2id).
    secret_question: Mapped[str | None] = mapped_column(String(120))
    secret_answer_hash: Mapped[str | None] = mapped_column(String(255))
    # Given by a services issuer's registration form (seed 002): Nombres, Apellidos and,
    # in Ecuador, Cédula/Pasaporte (the RFC above in Mexico).
    given_names: Mapped[str | None] = mapped_column(String(120))
    surnames: Mapped[str | None] = mapped_column(String(120))
    id_document: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None and self.password_hash is not None
