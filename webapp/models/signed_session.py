"""Sessions kept on the server: a browser is signed in while its session's row exists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class SignedSession(Base):
    """One signed-in browser, of a customer's account or of a staff member.

    The cookie carries a random token; the row holds its SHA-256, so neither a copy of the
    database nor a copy of the cookie alone is a session. Signing out deletes the row: a copy
    of the cookie replayed afterwards is anonymous.
    """

    __tablename__ = "signed_session"
    __table_args__ = (
        CheckConstraint("(account_id IS NULL) <> (staff_id IS NULL)", name="one_subject"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token, hex
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_member.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
