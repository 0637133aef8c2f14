"""Sales at the point of sale: the tickets customers turn into invoices."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, Money, UTCDateTime, status_enum, utcnow
from webapp.models.issuer import Branch


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    INVOICED = "invoiced"
    IN_GLOBAL = "in_global"
    CANCELLED = "cancelled"


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("branch_id", "ticket_number"),
        Index("ix_ticket_branch_id_status_sold_at", "branch_id", "status", "sold_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    order_number: Mapped[str] = mapped_column(String(40))
    ticket_number: Mapped[str] = mapped_column(String(40))
    sold_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="MXN")
    # SAT c_FormaPago of the payment (the form with the greatest amount when it was paid
    # several ways); None for tickets pushed without it.
    forma_pago: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[TicketStatus] = mapped_column(
        status_enum(TicketStatus),
        default=TicketStatus.OPEN,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch] = relationship(back_populates="tickets")
    lines: Mapped[list[TicketLine]] = relationship(
        back_populates="ticket", order_by="TicketLine.position", cascade="all, delete-orphan"
    )


class TicketLine(Base):
    """One concept of a ticket, with what the CFDI's Concepto needs.

    objeto_imp is SAT c_ObjetoImp ("01" not subject to tax, "02" subject); for "02",
    tax_factor is "Tasa" with tax_rate (0.160000, 0.000000) or "Exento" with no rate.
    unit_price is before tax.
    """

    __tablename__ = "ticket_line"
    __table_args__ = (UniqueConstraint("ticket_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    position: Mapped[int]
    description: Mapped[str] = mapped_column(String(1000))
    clave_prod_serv: Mapped[str] = mapped_column(String(8))
    clave_unidad: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    objeto_imp: Mapped[str] = mapped_column(String(2), default="02")
    tax_factor: Mapped[str | None] = mapped_column(String(6))
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 6))

    ticket: Mapped[Ticket] = relationship(back_populates="lines")
