"""Merchant staff and the platform operator: people who sign in to the back office (/admin).

Separate from customers' accounts (a customer is identified by an RFC and sees invoices issued
to it; staff act for an issuer). They share the sign-in machinery: argon2id passwords, the
security preset's lock/throttle and captcha, session versions, the audit log.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, status_enum, utcnow
from webapp.models.issuer import Branch, Issuer


class StaffRole(enum.StrEnum):
    OPERATOR = "operator"  # runs the deployment: every issuer
    ISSUER_ADMIN = "issuer_admin"  # one issuer: fiscal data, CSD, policies, API keys, staff
    BRANCH_STAFF = "branch_staff"  # one branch of one issuer: its tickets and invoices


class StaffMember(Base):
    __tablename__ = "staff_member"
    __table_args__ = (
        CheckConstraint(
            "(role = 'operator' AND issuer_id IS NULL AND branch_id IS NULL)"
            " OR (role = 'issuer_admin' AND issuer_id IS NOT NULL AND branch_id IS NULL)"
            " OR (role = 'branch_staff' AND issuer_id IS NOT NULL AND branch_id IS NOT NULL)",
            name="role_scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lowercased
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[StaffRole] = mapped_column(status_enum(StaffRole, "role"))
    issuer_id: Mapped[int | None] = mapped_column(ForeignKey("issuer.id"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_version: Mapped[int] = mapped_column(default=1)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    issuer: Mapped[Issuer | None] = relationship()
    branch: Mapped[Branch | None] = relationship()

    @property
    def verified(self) -> bool:
        return self.active and self.password_hash is not None
