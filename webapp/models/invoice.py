"""Invoices (CFDI) with a snapshot of the receptor as it was when stamped."""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, Money, UTCDateTime, status_enum, utcnow
from webapp.models.issuer import Branch, Issuer
from webapp.models.ticket import Ticket


class InvoiceStatus(enum.StrEnum):
    """The stamping state machine: draft → signed → stamping → stamped | failed."""

    DRAFT = "draft"
    SIGNED = "signed"
    STAMPING = "stamping"
    STAMPED = "stamped"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AuthorityState(enum.StrEnum):
    """An SRI factura at SRI (Invoice.authority_state): draft and signed are the invoice's
    own states; then sent → received → authorised | returned | not_authorised."""

    SENT = "sent"  # handed to reception, no answer yet (the answer may have been lost)
    RECEIVED = "received"  # RECIBIDA: waiting for the authorisation (EN PROCESO)
    AUTHORISED = "authorised"  # AUTORIZADO (status STAMPED)
    RETURNED = "returned"  # DEVUELTA: reception refused it (status FAILED)
    NOT_AUTHORISED = "not_authorised"  # NO AUTORIZADO (status FAILED)


class CancelStatus(enum.StrEnum):
    """A cancellation request's state at the PAC/SAT: en proceso, cancelada, rechazada."""

    PENDING = "pending"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


invoice_ticket = Table(
    "invoice_ticket",
    Base.metadata,
    Column("invoice_id", ForeignKey("invoice.id", ondelete="CASCADE"), primary_key=True),
    Column("ticket_id", ForeignKey("ticket.id"), primary_key=True, index=True),
    # True while the invoice holds the ticket (being stamped or valid); a ticket is held by at
    # most one invoice at a time: the database refuses a second one.
    Column("active", Boolean, nullable=False, default=True, server_default=true()),
    Index(
        "uq_invoice_ticket_active_ticket_id",
        "ticket_id",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
)


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


def _panel_index(name: str, *columns: str) -> Index:
    """An index of the customer's panel: the account, the filter, then (fecha, id), which
    both databases walk backwards for newest first: a page is a short range scan."""
    return Index(f"ix_invoice_panel_{name}", "account_id", *columns, "fecha", "id")


# The two sort orders also carry every filtered column, so a scan in sort order checks
# the filters from the index alone (webapp/panel/query.py chooses when to walk them).
_FILTERED = ("status", "archived", "issuer_id", "branch_id")


class Invoice(Base):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("issuer_id", "serie", "folio"),
        Index("ix_invoice_panel_fecha", "account_id", "fecha", "id", "total", *_FILTERED),
        _panel_index("issuer", "issuer_id"),
        _panel_index("branch", "branch_id"),
        _panel_index("state", "status", "archived"),
        Index("ix_invoice_panel_total", "account_id", "total", "id", "fecha", *_FILTERED),
        Index("ix_invoice_panel_uuid", "account_id", "uuid"),
        Index("ix_invoice_panel_folio", "account_id", "folio"),
        Index("uq_invoice_access_key", "access_key", unique=True),
        # The back office's lists: an issuer's invoices, a branch's invoices, newest first.
        Index("ix_invoice_issuer_id_fecha_id", "issuer_id", "fecha", "id"),
        Index("ix_invoice_branch_id_fecha_id", "branch_id", "fecha", "id"),
        # Reconcile (stuck states by age) and the back office's counters by state.
        Index("ix_invoice_status_updated_at", "status", "updated_at"),
        # The bills of the service accounts whose lines a customer holds (their panel).
        # Partial: the planner's statistics then count bills only, not every ticket invoice
        # (whose NULLs would make the index look useless next to a table scan).
        Index(
            "ix_invoice_service_account_id",
            "service_account_id",
            sqlite_where=text("service_account_id IS NOT NULL"),
            postgresql_where=text("service_account_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Opaque identifier for URLs: never the sequential id.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    status: Mapped[InvoiceStatus] = mapped_column(
        status_enum(InvoiceStatus),
        default=InvoiceStatus.DRAFT,
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The folio fiscal: the CFDI's UUID; an SRI factura's número de autorización (its clave
    # de acceso, 49 digits), set when authorised.
    uuid: Mapped[str | None] = mapped_column(String(49), unique=True)
    serie: Mapped[str] = mapped_column(String(25))
    folio: Mapped[int]
    fecha: Mapped[datetime] = mapped_column(UTCDateTime)
    # Receptor snapshot.
    # The buyer's tax id: an RFC; in Ecuador a RUC, cédula, passport or foreign id (its type
    # in receptor_id_type, SRI's tipoIdentificacionComprador) and their address.
    receptor_rfc: Mapped[str] = mapped_column(String(20), index=True)
    receptor_id_type: Mapped[str | None] = mapped_column(String(2))
    receptor_address: Mapped[str | None] = mapped_column(String(300))
    receptor_nombre: Mapped[str] = mapped_column(String(254))
    receptor_cp: Mapped[str] = mapped_column(String(5))
    receptor_regimen: Mapped[str] = mapped_column(String(3))
    uso_cfdi: Mapped[str] = mapped_column(String(4))
    forma_pago: Mapped[str] = mapped_column(String(2))
    metodo_pago: Mapped[str] = mapped_column(String(3), default="PUE")
    currency: Mapped[str] = mapped_column(String(3), default="MXN")
    subtotal: Mapped[Decimal] = mapped_column(Money)
    taxes: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    # Loaded when read, not with every row (lists show many rows and no files).
    xml: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    delivery_email: Mapped[str | None] = mapped_column(String(254))
    # The account whose panel lists the invoice: the one that asked for it, or else the one
    # whose verified address it was delivered to (an RFC alone proves nothing).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    # Past the retention window the files live in `invoice_archive` (never deleted).
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # Factura global (to XAXX010101000): InformacionGlobal's Periodicidad, Meses and Año.
    is_global: Mapped[bool] = mapped_column(default=False, server_default=false())
    global_periodicity: Mapped[str | None] = mapped_column(String(2))
    global_months: Mapped[str | None] = mapped_column(String(2))
    global_year: Mapped[int | None]
    global_period_start: Mapped[date | None] = mapped_column(Date)  # first day (Mexico City)
    # A global invoice holding a ticket that was later invoiced on its own: to be cancelled
    # with motive 04 and reissued without that sale.
    needs_correction: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Cancellation (motive 01 names the replacing invoice, issued first).
    cancel_status: Mapped[CancelStatus | None] = mapped_column(
        status_enum(CancelStatus, "cancel_status")
    )
    cancel_motive: Mapped[str | None] = mapped_column(String(2))
    cancel_replacement_uuid: Mapped[str | None] = mapped_column(String(36))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_error: Mapped[str | None] = mapped_column(Text)
    # A replacement (CfdiRelacionados TipoRelacion 04) names the invoice it replaces, which is
    # then cancelled with motive 01.
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoice.id", ondelete="SET NULL"), index=True
    )
    # Ecuador (SRI): the clave de acceso, fixed when the factura is signed (recovery asks
    # SRI by it; the same signed XML is sent again, never one under a new clave), and where
    # the factura stands at SRI while `status` is STAMPING (sent, received) or FAILED
    # (returned: DEVUELTA; not_authorised: NO AUTORIZADO): AuthorityState.
    access_key: Mapped[str | None] = mapped_column(String(49))
    authority_state: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    stamped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Stamped by a provider's test environment (the sandbox, a PAC's demo): no fiscal
    # validity. Recorded from the provider that stamped it; the PDF, the email and the back
    # office read it from here.
    test_stamp: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A service bill's invoice (webapp.billing): the service account it bills, so the panel
    # shows it to every account holding a verified line of it.
    service_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_account.id", ondelete="SET NULL")
    )

    issuer: Mapped[Issuer] = relationship()
    branch: Mapped[Branch] = relationship()
    tickets: Mapped[list[Ticket]] = relationship(secondary=invoice_ticket)
    replaces: Mapped[Invoice | None] = relationship(remote_side=[id])

    @property
    def number(self) -> str:
        """As printed: serie-folio (A-123); an SRI factura's estab-ptoEmi-secuencial
        (001-001-000000123)."""
        if self.issuer.country == "EC":
            return f"{self.serie}-{self.folio:09d}"
        return f"{self.serie}-{self.folio}"


class CancelRequest(Base):
    """One cancellation request of an invoice and what became of it: the history behind
    Invoice.cancel_* (which hold the latest). `status` None: the PAC refused the request."""

    __tablename__ = "cancel_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoice.id", ondelete="CASCADE"), index=True
    )
    motive: Mapped[str] = mapped_column(String(2))
    replacement_uuid: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[CancelStatus | None] = mapped_column(status_enum(CancelStatus, "cancel_status"))
    message: Mapped[str] = mapped_column(Text, default="")
    acuse: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceArchive(Base):
    """Archive storage: the files of an invoice past the retention window, compressed."""

    __tablename__ = "invoice_archive"

    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoice.id", ondelete="RESTRICT"), primary_key=True
    )
    xml_gz: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_gz: Mapped[bytes | None] = mapped_column(LargeBinary)
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
