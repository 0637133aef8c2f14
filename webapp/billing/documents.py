"""A bill's fiscal document, behind one interface: the billing run (webapp.billing.run) asks
the issuer's country for its `BillDocument` and never knows which one it got.

    document = document_for(issuer, stamping)      # "MX": CfdiDocument (CFDI 4.0)
    kind = document.kind_for(account)              # INVOICE or RECEIPT, at the bill's birth
    outcome = document.issue(session, bill, account, now)
    unfinished = document.unfinished(issuer_id, period)  # select(ServiceBill.id) to finish

Mexico (CFDI 4.0). A holder who gave fiscal data (ServiceAccount.has_fiscal_data) gets the
bill stamped as their invoice through the one stamping road (services.stamping.Stamping.issue
with an issuing.issue.Request on the bill's ticket): the receptor is the account's fiscal
data, the idempotency key is the bill's (`bill_key`), so a rerun after a kill finds the same
invoice (reserved, signed, at the PAC: Stamping.finish and reconcile take it from there) and
never makes a second one. The invoice names the service account (Invoice.service_account_id)
and is emailed through the outbox, in the stamp's commit, when the account has an email.

Método de pago: the stamping road knows PUE only (issuing.issue.fill), and "99 Por definir"
goes with PPD only (tickets.payment.POR_DEFINIR), so the invoice is PUE with the forma de pago
recorded on the bill's ticket by the run: the account's latest payment's form, else the
issuer's first forma de pago (`forma_pago_for`). PPD with complementos de pago is not built.

A holder without fiscal data gets a receipt: the bill's ticket stays OPEN in the issuer's
billing branch, so the period's factura global takes it as it takes an unclaimed retail
ticket, and the holder may still ask for the invoice within the issuer's invoicing window
(webapp.billing.statement.ask_invoice, through the same road; a ticket already in the global
is released from it as for retail: issuer.global_policy). `bill_key` and `forma_pago_for`
are the ones to use there too: one invoice per bill, whoever asks.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import Select, String, cast, literal, or_, select
from sqlalchemy.orm import Session
from stdnum.ec import ci as ec_ci

from webapp.cfdi.amounts import ticket_total
from webapp.fiscal.receptor import Receptor
from webapp.issuing import issue, sri_invoice
from webapp.models import (
    BillKind,
    Invoice,
    Issuer,
    ServiceAccount,
    ServiceBill,
    Ticket,
    TicketLine,
    TicketStatus,
)
from webapp.services.stamping import Outcome, Result, Stamping
from webapp.sri import catalogs
from webapp.tickets.payment import TICKET_FORMAS_PAGO

FORMA_PAGO_EFECTIVO = "01"


class Issued(enum.StrEnum):
    """What became of a bill's document."""

    STAMPED = "stamped"  # the invoice is stamped (the bill is done)
    RECEIPT = "receipt"  # a receipt: nothing to stamp now (factura global, or asked later)
    PENDING = "pending"  # on its way (no answer from the PAC yet): reconcile or a rerun ends it
    FAILED = "failed"  # refused, or the issuer cannot sign now: a rerun tries again


@dataclass(frozen=True)
class DocumentOutcome:
    issued: Issued
    invoice: Invoice | None = None
    reason: str = ""  # for staff and the log (the PAC's words, the CSD problem)


class BillDocument(Protocol):
    """The fiscal document of a country's bills."""

    country: str
    currency: str  # of the bill's ticket and document
    formas_pago: Collection[str]  # the payments' forms the document may name

    def total(self, lines: list[TicketLine]) -> Decimal:
        """What the bill's ticket of `lines` adds up to, by the document's rounding rules."""
        ...

    def kind_for(self, account: ServiceAccount) -> BillKind:
        """What the account's bill is when the run makes it."""
        ...

    def issue(
        self, session: Session, bill: ServiceBill, account: ServiceAccount, now: datetime
    ) -> DocumentOutcome:
        """Issue the bill's document (the bill and its ticket are committed); idempotent:
        a second call for the same bill finds what the first one made. May commit."""
        ...

    def unfinished(self, issuer_id: int, period: str) -> Select:
        """select(ServiceBill.id) of the issuer's bills of `period` whose document is still
        to be issued (never tried, refused, or left on its way by a dead process)."""
        ...


class UnsupportedCountry(Exception):
    """No document type for the issuer's country yet."""


def bill_key(bill_id: int) -> str:
    """The idempotency key of a bill's invoice: one invoice per bill, whoever asks."""
    return f"bill:{bill_id}"


def _bill_key_column():
    return literal("bill:") + cast(ServiceBill.id, String)


def invoice_of(session: Session, bill: ServiceBill) -> Invoice | None:
    """The bill's invoice (stamped, or on its way), if it has one."""
    return issue.by_key(session, bill_key(bill.id))


def forma_pago_for(issuer: Issuer, latest_payment_form: str | None) -> str:
    """The forma de pago of a bill (PUE): the form the account paid with last, else the
    issuer's first forma de pago, else 01 (efectivo); never 99, which needs PPD."""
    if latest_payment_form in TICKET_FORMAS_PAGO:
        return latest_payment_form
    for code in (issuer.formas_pago or "").split(","):
        if code.strip() in TICKET_FORMAS_PAGO:
            return code.strip()
    return FORMA_PAGO_EFECTIVO


def receptor_of(account: ServiceAccount) -> Receptor:
    return Receptor(
        rfc=account.fiscal_rfc or "",
        nombre=account.fiscal_name or "",
        cp=account.fiscal_cp or "",
        regimen=account.fiscal_regimen or "",
        uso_cfdi=account.fiscal_uso or "",
    )


def _outcome(outcome: Outcome) -> DocumentOutcome:
    if outcome.result is Result.STAMPED:
        return DocumentOutcome(Issued.STAMPED, outcome.invoice)
    if outcome.result is Result.PENDING:
        return DocumentOutcome(Issued.PENDING, outcome.invoice, outcome.reason)
    return DocumentOutcome(Issued.FAILED, outcome.invoice, outcome.reason or outcome.result)


class CfdiDocument:
    """Mexico: the bill is a CFDI 4.0 invoice when the holder gave fiscal data, else a
    receipt whose sale goes into the factura global."""

    country = "MX"
    currency = "MXN"
    formas_pago = TICKET_FORMAS_PAGO

    def __init__(self, stamping: Stamping):
        self.stamping = stamping

    def total(self, lines: list[TicketLine]) -> Decimal:
        return ticket_total(lines)

    def kind_for(self, account: ServiceAccount) -> BillKind:
        return BillKind.INVOICE if account.has_fiscal_data else BillKind.RECEIPT

    def issue(
        self, session: Session, bill: ServiceBill, account: ServiceAccount, now: datetime
    ) -> DocumentOutcome:
        if bill.kind is not BillKind.INVOICE:
            return DocumentOutcome(Issued.RECEIPT)
        ticket = bill.ticket
        issuer = account.issuer
        request = issue.Request(
            branch_id=ticket.branch_id,
            ticket_ids=[ticket.id],
            receptor=self.receptor(account),
            forma_pago=self.forma_pago(issuer, ticket.forma_pago),
            email=account.email or None,
            idempotency_key=bill_key(bill.id),
            service_account_id=account.id,
        )
        return _outcome(self.stamping.issue(session, request, issuer, now))

    def receptor(self, account: ServiceAccount) -> Receptor:
        return receptor_of(account)

    def forma_pago(self, issuer: Issuer, latest_payment_form: str | None) -> str:
        return forma_pago_for(issuer, latest_payment_form)

    def unfinished(self, issuer_id: int, period: str) -> Select:
        # Never reserved, or refused (its ticket is free again), or on its way to the PAC.
        return (
            select(ServiceBill.id)
            .join(Ticket, Ticket.id == ServiceBill.ticket_id)
            .outerjoin(Invoice, Invoice.idempotency_key == _bill_key_column())
            .where(
                ServiceBill.issuer_id == issuer_id,
                ServiceBill.period == period,
                ServiceBill.kind == BillKind.INVOICE,
                or_(Ticket.status == TicketStatus.OPEN, Invoice.status.in_(issue.PENDING)),
            )
            .order_by(ServiceBill.id)
        )


def comprador_of(account: ServiceAccount) -> Receptor:
    """Ecuador: the bill's comprador. The fiscal data when the holder gave them (a RUC in
    fiscal_rfc, the razón social in fiscal_name), else the holder: a valid cédula as such,
    any other id as a passport."""
    if account.fiscal_rfc:
        return Receptor(
            rfc=account.fiscal_rfc,
            nombre=account.fiscal_name or account.holder_name,
            cp="",
            regimen="",
            uso_cfdi="",
            id_type=catalogs.RUC,
        )
    holder_id = (account.holder_id or "").strip()
    id_type = catalogs.CEDULA if ec_ci.is_valid(holder_id) else catalogs.PASAPORTE
    return Receptor(
        rfc=holder_id, nombre=account.holder_name, cp="", regimen="", uso_cfdi="", id_type=id_type
    )


SRI_FORMA_PAGO = "20"  # otros con utilización del sistema financiero


def sri_forma_pago(issuer: Issuer, latest_payment_form: str | None) -> str:
    """The SRI forma de pago of a bill: the form the account paid with last when it is one of
    SRI's, else the issuer's first, else 20 (otros con utilización del sistema financiero)."""
    if latest_payment_form in catalogs.FORMAS_PAGO:
        return latest_payment_form
    for code in (issuer.formas_pago or "").split(","):
        if code.strip() in catalogs.FORMAS_PAGO:
            return code.strip()
    return SRI_FORMA_PAGO


class SriDocument(CfdiDocument):
    """Ecuador: every bill is an SRI factura (there is no factura global: a sale without the
    buyer's data is a factura to the holder's cédula), signed with the issuer's .p12 and
    authorised by SRI through the same stamping road as a CFDI (services.stamping), so
    `unfinished` and the idempotency by bill are the same as Mexico's."""

    country = "EC"
    currency = "USD"
    formas_pago = tuple(catalogs.FORMAS_PAGO)

    def total(self, lines: list[TicketLine]) -> Decimal:
        return sri_invoice.lines_total(lines)

    def kind_for(self, account: ServiceAccount) -> BillKind:
        return BillKind.INVOICE

    def receptor(self, account: ServiceAccount) -> Receptor:
        return comprador_of(account)

    def forma_pago(self, issuer: Issuer, latest_payment_form: str | None) -> str:
        return sri_forma_pago(issuer, latest_payment_form)


DOCUMENTS: dict[str, type] = {"MX": CfdiDocument, "EC": SriDocument}
"""Each country's document type, built with the deployment's stamping service."""


def document_for(issuer: Issuer, stamping: Stamping) -> BillDocument:
    try:
        return DOCUMENTS[issuer.country](stamping)
    except KeyError:
        raise UnsupportedCountry(issuer.country) from None
