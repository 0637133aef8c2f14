"""Merchants (issuers of CFDI) and their branches."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.ticket import Ticket


class Issuer(Base):
    """The Emisor of every CFDI: a merchant with its fiscal data and its CSD."""

    __tablename__ = "issuer"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    # "retail" (tickets from branches) or "services" (monthly service bills: webapp.billing).
    kind: Mapped[str] = mapped_column(String(10), default="retail", server_default="retail")
    # Whose fiscal rules its documents follow: "MX" (CFDI 4.0) or "EC" (SRI facturas).
    country: Mapped[str] = mapped_column(String(2), default="MX", server_default="MX")
    # The tax id: the RFC in Mexico, the RUC (13 digits) in Ecuador.
    rfc: Mapped[str] = mapped_column(String(13), unique=True)
    legal_name: Mapped[str] = mapped_column(String(254))  # razón social
    # Ecuador (SRI): nombre comercial, dirección matriz, obligado a llevar contabilidad,
    # contribuyente especial (resolution number) and the RIMPE legend (sri.catalogs).
    trade_name: Mapped[str | None] = mapped_column(String(300))
    head_office_address: Mapped[str | None] = mapped_column(String(300))
    keeps_accounts: Mapped[bool] = mapped_column(default=False, server_default=false())
    special_taxpayer: Mapped[str | None] = mapped_column(String(13))
    rimpe: Mapped[str | None] = mapped_column(String(60))
    # Ecuador: the signing certificate (.p12) and its password, encrypted at rest like the
    # CSD (webapp.crypto), never shown again; what the back office shows of it.
    p12_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    p12_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    p12_subject: Mapped[str | None] = mapped_column(String(254))
    p12_valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    regimen_fiscal: Mapped[str] = mapped_column(String(3))
    cp: Mapped[str] = mapped_column(String(5))
    serie: Mapped[str] = mapped_column(String(25), default="A")
    next_folio: Mapped[int] = mapped_column(default=1)
    # CSD: the certificate (DER) as issued; the .key file and its password encrypted at rest
    # under the configured data key (webapp.crypto), never shown again once stored.
    csd_certificate: Mapped[bytes | None] = mapped_column(LargeBinary)
    csd_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    csd_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    csd_number: Mapped[str | None] = mapped_column(String(20))
    csd_valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    csd_valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Invoicing policy (merchant's choice, not law); see webapp.fiscal.window for the format.
    window_policy: Mapped[str] = mapped_column(
        String(40), default="until_day_next_month:3", server_default="until_day_next_month:3"
    )
    # SAT c_FormaPago codes customers may choose, comma-separated, in display order.
    formas_pago: Mapped[str] = mapped_column(
        String(200), default="01,04,28,03", server_default="01,04,28,03"
    )
    # A ticket already in a factura global: "flag" (invoice it and flag the global for
    # correction) or "refuse".
    global_policy: Mapped[str] = mapped_column(String(10), default="flag", server_default="flag")
    # Customers without an account may invoice on the web (delivered by email); when off, the
    # web flow asks them to sign in. Kiosks always invoice without an account.
    guest_invoicing: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Factura global: c_Periodicidad (01 diaria, 02 semanal, 03 quincenal, 04 mensual,
    # 05 bimestral) of the periods the back office offers.
    global_periodicity: Mapped[str] = mapped_column(String(2), default="01", server_default="01")
    # Stamping provider of this issuer (None: the deployment's PAC setting) and its credentials
    # (JSON, encrypted at rest like the CSD, never shown again).
    pac_provider: Mapped[str | None] = mapped_column(String(20))
    pac_credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Branding on the customer pages and the PDF: a small logo (PNG or SVG) and a main colour.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(40))
    brand_color: Mapped[str | None] = mapped_column(String(7))
    # The platform's business with the issuer (webapp.platform): when its licence expires
    # (None: not checked), its stamp credits (None: not metered; webapp.issuing.credits is
    # the only writer, with the ledger), the lowest low-credit warning already sent, and
    # whether its onboarding checklist is still open (an issuer the operator created: not
    # offered to customers until its admin completes it).
    licence_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stamp_credits: Mapped[int | None]
    credit_warned_at_threshold: Mapped[int | None]
    onboarding_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branches: Mapped[list[Branch]] = relationship(back_populates="issuer", order_by="Branch.code")

    @property
    def currency(self) -> str:
        """The currency of its tickets, bills and invoices: pesos, or US dollars in Ecuador."""
        return "USD" if self.country == "EC" else "MXN"


class Branch(Base):
    """A sucursal: where tickets are sold; its CP is the CFDI's LugarExpedicion."""

    __tablename__ = "branch"
    __table_args__ = (
        UniqueConstraint("issuer_id", "code"),
        # One series per establecimiento and punto de emisión (an index: added to an existing
        # table without rebuilding it on SQLite).
        Index("uq_branch_issuer_id_estab_pto_emi", "issuer_id", "estab", "pto_emi", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuer.id"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120))
    cp: Mapped[str] = mapped_column(String(5))
    address: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Ecuador: the branch is an establecimiento (estab, 3 digits) with one punto de emisión
    # (pto_emi, 3 digits); next_secuencial is their gap-free counter, taken under the
    # branch's row lock (issuing.issue.reserve).
    estab: Mapped[str | None] = mapped_column(String(3))
    pto_emi: Mapped[str | None] = mapped_column(String(3))
    next_secuencial: Mapped[int] = mapped_column(default=1, server_default="1")

    issuer: Mapped[Issuer] = relationship(back_populates="branches")
    tickets: Mapped[list[Ticket]] = relationship(back_populates="branch")
