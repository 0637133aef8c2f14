"""Monthly service bills (seed 002, Mi Claro): a services issuer's catalogue of service types
and plans, its service accounts with their lines, charges and payments, the bill of every
account and billing period, the lines customers proved they hold, and the terms they accept.

A bill's sale is a Ticket of the issuer's billing branch (its lines are the bill's conceptos),
so everything the retail tickets have works for bills unchanged: the invoice through the one
stamping road, the factura global for bills whose holder gave no fiscal data, the invoicing
window for the holder who asks for the invoice later.
"""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, Money, UTCDateTime, status_enum, utcnow
from webapp.models.issuer import Issuer
from webapp.models.ticket import Ticket


class LineKind(enum.StrEnum):
    PHONE = "phone"  # a mobile number (E.164); the code goes to the line itself
    CONTRACT = "contract"  # a home service's contract number; the code goes to the account's mobile


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class ServiceType(Base):
    """Móvil, Hogar, TV…: what a customer chooses before adding a line."""

    __tablename__ = "service_type"
    __table_args__ = (UniqueConstraint("issuer_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60))
    line_kind: Mapped[LineKind] = mapped_column(
        status_enum(LineKind, "line_kind"), default=LineKind.PHONE
    )
    position: Mapped[int] = mapped_column(default=0)


class Plan(Base):
    """A plan's monthly fee: the concepto every line on it adds to its account's bill."""

    __tablename__ = "service_plan"
    __table_args__ = (UniqueConstraint("issuer_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_type.id"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120))
    # Before tax, like TicketLine.unit_price; IVA at tax_rate (None: exento).
    monthly_fee: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 6), default=Decimal("0.160000"))
    clave_prod_serv: Mapped[str] = mapped_column(String(8), default="81161700")
    clave_unidad: Mapped[str] = mapped_column(String(3), default="E48")
    active: Mapped[bool] = mapped_column(default=True)

    service_type: Mapped[ServiceType] = relationship()


class ServiceAccount(Base):
    """A holder's account at the provider: who pays, the fiscal data they gave (if any) and
    the day of the month their billing period closes (the corte)."""

    __tablename__ = "service_account"
    __table_args__ = (UniqueConstraint("issuer_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    number: Mapped[str] = mapped_column(String(40))  # the provider's account number
    holder_name: Mapped[str] = mapped_column(String(254))
    holder_id: Mapped[str] = mapped_column(String(20))  # RFC (Mexico) or cédula/pasaporte
    # Receptor data when the holder gave it; without it each bill is a receipt whose sale
    # goes into the factura global until the holder asks for the invoice.
    fiscal_rfc: Mapped[str | None] = mapped_column(String(13))
    fiscal_name: Mapped[str | None] = mapped_column(String(254))
    fiscal_cp: Mapped[str | None] = mapped_column(String(5))
    fiscal_regimen: Mapped[str | None] = mapped_column(String(3))
    fiscal_uso: Mapped[str | None] = mapped_column(String(4))
    email: Mapped[str | None] = mapped_column(String(254))  # where bills are emailed
    contact_mobile: Mapped[str | None] = mapped_column(String(16))  # E.164; codes for contracts
    billing_day: Mapped[int] = mapped_column(default=1)  # 1–28
    status: Mapped[AccountStatus] = mapped_column(
        status_enum(AccountStatus), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    issuer: Mapped[Issuer] = relationship()
    lines: Mapped[list[ServiceLine]] = relationship(
        back_populates="account", order_by="ServiceLine.id"
    )

    @property
    def has_fiscal_data(self) -> bool:
        """The holder gave the data of an invoice to their own tax id: RFC, name, CP,
        régimen and uso (Mexico); RUC and razón social (Ecuador)."""
        if self.issuer is not None and self.issuer.country == "EC":
            return bool(self.fiscal_rfc and self.fiscal_name)
        return bool(
            self.fiscal_rfc
            and self.fiscal_name
            and self.fiscal_cp
            and self.fiscal_regimen
            and self.fiscal_uso
        )


class ServiceLine(Base):
    """A line of an account: a phone number (E.164) or a home service's contract number."""

    __tablename__ = "service_line"
    __table_args__ = (UniqueConstraint("issuer_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    service_account_id: Mapped[int] = mapped_column(ForeignKey("service_account.id"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_type.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("service_plan.id"))
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[AccountStatus] = mapped_column(
        status_enum(AccountStatus), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[ServiceAccount] = relationship(back_populates="lines")
    service_type: Mapped[ServiceType] = relationship()
    plan: Mapped[Plan | None] = relationship()


class Charge(Base):
    """A charge of a billing period beyond the plans' fees (extra data, a device instalment,
    a late fee…), sent by the provider's billing system. Billed once: bill_id is set by the
    billing run that puts it on a bill."""

    __tablename__ = "service_charge"
    __table_args__ = (
        UniqueConstraint("issuer_id", "external_id"),
        Index("ix_service_charge_account_period", "service_account_id", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    service_account_id: Mapped[int] = mapped_column(ForeignKey("service_account.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("service_line.id"))
    external_id: Mapped[str] = mapped_column(String(64))  # the provider's id: sent twice, kept once
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    description: Mapped[str] = mapped_column(String(1000))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))  # before tax
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 6), default=Decimal("0.160000"))
    clave_prod_serv: Mapped[str] = mapped_column(String(8), default="81161700")
    clave_unidad: Mapped[str] = mapped_column(String(3), default="E48")
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("service_bill.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Payment(Base):
    """A payment received for an account, sent by the provider's billing system."""

    __tablename__ = "service_payment"
    __table_args__ = (
        UniqueConstraint("issuer_id", "external_id"),
        Index("ix_service_payment_account_received", "service_account_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    service_account_id: Mapped[int] = mapped_column(ForeignKey("service_account.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    forma_pago: Mapped[str | None] = mapped_column(String(2))  # SAT c_FormaPago
    reference: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def new_bill_public_id() -> str:
    return secrets.token_urlsafe(16)


class BillKind(enum.StrEnum):
    INVOICE = "invoice"  # the holder gave fiscal data: the bill is stamped as their invoice
    RECEIPT = "receipt"  # no fiscal data: a receipt; its sale goes into the factura global


class ServiceBill(Base):
    """The bill of one service account for one billing period: at most one (the database
    refuses a second, which is what makes the billing run safe to rerun after a kill)."""

    __tablename__ = "service_bill"
    __table_args__ = (
        UniqueConstraint("service_account_id", "period"),
        Index("ix_service_bill_issuer_id_period", "issuer_id", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_bill_public_id)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    service_account_id: Mapped[int] = mapped_column(ForeignKey("service_account.id"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    kind: Mapped[BillKind] = mapped_column(status_enum(BillKind, "kind"))
    cut_date: Mapped[date] = mapped_column(Date)  # the corte: last day of the period billed
    due_date: Mapped[date] = mapped_column(Date)
    # The statement: balance before this bill, charges of the period (with tax), payments
    # received since the previous bill, and what is due now.
    previous_balance: Mapped[Decimal] = mapped_column(Money)
    charges_total: Mapped[Decimal] = mapped_column(Money)
    payments_total: Mapped[Decimal] = mapped_column(Money)
    balance_due: Mapped[Decimal] = mapped_column(Money)
    # The sale behind the bill (its lines are the conceptos), in the issuer's billing branch.
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[ServiceAccount] = relationship()
    ticket: Mapped[Ticket] = relationship()


class BillingRun(Base):
    """A billing run of an issuer and period, with its progress (for the bar)."""

    __tablename__ = "billing_run"
    __table_args__ = (UniqueConstraint("issuer_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    period: Mapped[str] = mapped_column(String(7))
    total: Mapped[int] = mapped_column(default=0)  # accounts to bill
    done: Mapped[int] = mapped_column(default=0)  # accounts billed (bill issued or receipt)
    failed: Mapped[int] = mapped_column(default=0)  # bills whose invoice could not be stamped
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a running run's pulse
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class LineHolder(Base):
    """A line a customer account proved it holds (by the code sent to it): the account then
    sees the bills of the line's service account."""

    __tablename__ = "line_holder"
    __table_args__ = (UniqueConstraint("account_id", "line_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    line_id: Mapped[int] = mapped_column(ForeignKey("service_line.id", ondelete="CASCADE"))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    line: Mapped[ServiceLine] = relationship()


class LineCode(Base):
    """A code sent to prove a line: hashed, 10 minutes, single use, 5 tries. Written whether
    or not the number is a line (line_id None), so the answer never tells which."""

    __tablename__ = "line_code"
    __table_args__ = (Index("ix_line_code_account_id_created_at", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    number: Mapped[str] = mapped_column(String(40), index=True)  # as normalised
    line_id: Mapped[int | None] = mapped_column(ForeignKey("service_line.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # last (re)send
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServiceTerms(Base):
    """A version of a services issuer's Términos y Condiciones del Servicio; the newest is
    current."""

    __tablename__ = "service_terms"
    __table_args__ = (UniqueConstraint("issuer_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    version: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TermsAcceptance(Base):
    """An account accepted a version of an issuer's terms (at registration, or at the next
    sign-in after a new version)."""

    __tablename__ = "terms_acceptance"
    __table_args__ = (UniqueConstraint("account_id", "terms_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    terms_id: Mapped[int] = mapped_column(ForeignKey("service_terms.id"))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
