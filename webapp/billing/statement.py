"""What a customer sees of their service bills (seed 002, Facturación → Ver Factura, Estado
de cuenta), without Flask: which service accounts an account may see, the bills of their last
12 cycles with each one's invoice, the payments received in a cycle, the statement of account,
and the invoice a holder asks for a bill that was issued as a receipt.

An account sees a service account only through a line it proved it holds (LineHolder): every
function here that takes an `account_id` answers only about those service accounts, so a bill
of anyone else's is "not found", never "forbidden" (no enumeration).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from webapp.billing.documents import forma_pago_for
from webapp.fiscal.receptor import Receptor
from webapp.fiscal.window import in_window, parse_policy, window_end
from webapp.issuing import issue
from webapp.models import (
    BillKind,
    CustomerProfile,
    Invoice,
    InvoiceStatus,
    Issuer,
    LineHolder,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
    invoice_ticket,
)
from webapp.services.stamping import Outcome, Stamping

MEXICO_CITY = ZoneInfo("America/Mexico_City")
HISTORY = 12  # cycles listed and in the statement's history
FILES = (InvoiceStatus.STAMPED, InvoiceStatus.CANCELLED)  # an invoice with files to download


# --- What an account may see ------------------------------------------------------------------


def _held(account_id: int, issuer_id: int | None):
    """The ids of the service accounts of the lines `account_id` holds (of one issuer)."""
    query = (
        select(ServiceLine.service_account_id)
        .join(LineHolder, LineHolder.line_id == ServiceLine.id)
        .where(LineHolder.account_id == account_id)
    )
    if issuer_id is not None:
        query = query.where(ServiceLine.issuer_id == issuer_id)
    return query


def visible_account_ids(
    session: Session, account_id: int, issuer_id: int | None = None
) -> list[int]:
    """The service accounts whose bills `account_id` sees, of one issuer or of all (the
    invoice panel): one index probe of line_holder (led by account_id) joined to the lines."""
    return sorted(set(session.scalars(_held(account_id, issuer_id))))


def visible_accounts(session: Session, account_id: int, issuer_id: int) -> list[ServiceAccount]:
    """The issuer's service accounts of the lines `account_id` holds, by number."""
    return list(
        session.scalars(
            select(ServiceAccount)
            .where(
                ServiceAccount.issuer_id == issuer_id,
                ServiceAccount.id.in_(_held(account_id, issuer_id)),
            )
            .order_by(ServiceAccount.number)
        )
    )


def held_lines(session: Session, account_id: int, issuer_id: int) -> list[ServiceLine]:
    """The issuer's lines `account_id` holds, with their account and service type."""
    return list(
        session.scalars(
            select(ServiceLine)
            .join(LineHolder, LineHolder.line_id == ServiceLine.id)
            .where(LineHolder.account_id == account_id, ServiceLine.issuer_id == issuer_id)
            .options(joinedload(ServiceLine.account), joinedload(ServiceLine.service_type))
            .order_by(ServiceLine.service_account_id, ServiceLine.id)
        )
    )


@dataclass(frozen=True)
class Choice:
    """What the customer picked: a service account, through one of its lines or by number."""

    account: ServiceAccount
    line: ServiceLine | None = None


def choose(
    session: Session,
    account_id: int,
    issuer_id: int,
    value: str | None,
    lines: list[ServiceLine] | None = None,
) -> Choice | None:
    """The line (by id) or service account (by number) `value` names among those
    `account_id` may see; with no value, the first line it holds. None: nothing it may see
    (an unknown value and someone else's read the same). `lines`: held_lines, if read."""
    if lines is None:
        lines = held_lines(session, account_id, issuer_id)
    value = (value or "").strip()
    if not value:
        return Choice(lines[0].account, lines[0]) if lines else None
    if value.isdigit() and len(value) <= 18:
        for line in lines:
            if line.id == int(value):
                return Choice(line.account, line)
    account = account_by_number(session, account_id, issuer_id, value)
    return Choice(account) if account is not None else None


def account_by_number(
    session: Session, account_id: int, issuer_id: int, number: str | None
) -> ServiceAccount | None:
    """The service account `number` when `account_id` may see it, else None."""
    number = (number or "").strip()
    if not number or len(number) > 40:
        return None
    return session.scalar(
        select(ServiceAccount).where(
            ServiceAccount.issuer_id == issuer_id,
            ServiceAccount.number == number,
            ServiceAccount.id.in_(_held(account_id, issuer_id)),
        )
    )


# --- Bills --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """A bill with its invoice (None: a receipt nobody asked the invoice of yet)."""

    bill: ServiceBill
    invoice: Invoice | None

    @property
    def month(self) -> date:
        """The first day of the billed period (YYYY-MM), for "Noviembre 2026"."""
        return period_start(self.bill.period)

    @property
    def has_files(self) -> bool:
        return self.invoice is not None and self.invoice.status in FILES

    @property
    def invoice_pending(self) -> bool:
        return self.invoice is not None and self.invoice.status in issue.PENDING


def period_start(period: str) -> date:
    year, month = period.split("-")
    return date(int(year), int(month), 1)


def invoices_of(session: Session, ticket_ids: list[int]) -> dict[int, Invoice]:
    """The invoice holding each ticket (its active invoice_ticket row), facturas globales
    left out: a receipt's sale in the period's global is not the holder's invoice."""
    if not ticket_ids:
        return {}
    found: dict[int, Invoice] = {}
    for invoice, ticket_id in session.execute(
        select(Invoice, invoice_ticket.c.ticket_id)
        .join(invoice_ticket, invoice_ticket.c.invoice_id == Invoice.id)
        .where(
            invoice_ticket.c.ticket_id.in_(ticket_ids),
            invoice_ticket.c.active,
            Invoice.is_global.is_(False),
        )
        .order_by(Invoice.id)
    ):
        found[ticket_id] = invoice
    return found


def cycles(session: Session, service_account_id: int, limit: int = HISTORY) -> list[Cycle]:
    """The bills of the last `limit` cycles of a service account, newest first."""
    bills = list(
        session.scalars(
            select(ServiceBill)
            .where(ServiceBill.service_account_id == service_account_id)
            .order_by(ServiceBill.period.desc())
            .limit(limit)
        )
    )
    invoices = invoices_of(session, [b.ticket_id for b in bills])
    return [Cycle(b, invoices.get(b.ticket_id)) for b in bills]


def bill_for(session: Session, account_id: int, issuer_id: int, public_id: str) -> Cycle | None:
    """The bill `public_id` of the issuer when `account_id` may see its service account."""
    if not public_id or len(public_id) > 32:
        return None
    bill = session.scalar(
        select(ServiceBill)
        .where(
            ServiceBill.public_id == public_id,
            ServiceBill.issuer_id == issuer_id,
            ServiceBill.service_account_id.in_(_held(account_id, issuer_id)),
        )
        .options(
            joinedload(ServiceBill.account),
            joinedload(ServiceBill.ticket).selectinload(Ticket.lines),
        )
    )
    if bill is None:
        return None
    return Cycle(bill, invoices_of(session, [bill.ticket_id]).get(bill.ticket_id))


def _after_day(day: date) -> datetime:
    """The instant a local day ends (Mexico City midnight after it)."""
    return datetime.combine(day + timedelta(days=1), time(), MEXICO_CITY)


def previous_cut(session: Session, bill: ServiceBill) -> date | None:
    return session.scalar(
        select(ServiceBill.cut_date)
        .where(
            ServiceBill.service_account_id == bill.service_account_id,
            ServiceBill.period < bill.period,
        )
        .order_by(ServiceBill.period.desc())
        .limit(1)
    )


def payments_of(session: Session, bill: ServiceBill) -> list[Payment]:
    """The payments received in the bill's cycle: after the previous bill's corte, up to and
    including this one's (days in Mexico City), oldest first."""
    where = [
        Payment.service_account_id == bill.service_account_id,
        Payment.received_at < _after_day(bill.cut_date),
    ]
    if (before := previous_cut(session, bill)) is not None:
        where.append(Payment.received_at >= _after_day(before))
    return list(
        session.scalars(select(Payment).where(*where).order_by(Payment.received_at, Payment.id))
    )


@dataclass(frozen=True)
class Statement:
    """The statement of account: the newest cycle's figures, its payments, the history."""

    account: ServiceAccount
    history: list[Cycle]  # newest first, up to HISTORY
    payments: list[Payment]  # received in the newest cycle

    @property
    def latest(self) -> Cycle | None:
        return self.history[0] if self.history else None

    @property
    def payments_received(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0.00"))


def statement(session: Session, account: ServiceAccount) -> Statement:
    history = cycles(session, account.id)
    payments = payments_of(session, history[0].bill) if history else []
    return Statement(account, history, payments)


# --- Asking for the invoice of a receipt ---------------------------------------------------------


class Refusal(enum.StrEnum):
    NOT_A_RECEIPT = "not_a_receipt"  # an invoice bill: stamped by the billing run
    INVOICED = "invoiced"  # it has its invoice already (or one on its way)
    NO_PROFILE = "no_profile"  # the account saved no fiscal data
    OUT_OF_WINDOW = "out_of_window"  # past the issuer's invoicing window


def profile_of(session: Session, account_id: int) -> CustomerProfile | None:
    return session.scalar(select(CustomerProfile).where(CustomerProfile.account_id == account_id))


def receptor_of(profile: CustomerProfile) -> Receptor:
    """The receptor the ticket flow fills in from a saved profile (webapp.invoicing.profile)."""
    return Receptor(
        rfc=profile.rfc,
        nombre=profile.name,
        cp=profile.cp,
        regimen=profile.regimen_fiscal,
        uso_cfdi=profile.uso_cfdi,
    )


def last_day_to_ask(cycle: Cycle, issuer: Issuer) -> date:
    """The last day (Mexico City) the holder may ask for the bill's invoice: the issuer's
    invoicing window of the bill's sale, as for any ticket."""
    closes = window_end(cycle.bill.ticket.sold_at, parse_policy(issuer.window_policy))
    return (closes - timedelta(days=1)).date()


def refusal(
    session: Session, cycle: Cycle, issuer: Issuer, account_id: int, now: datetime
) -> Refusal | None:
    """Why the holder cannot ask for this bill's invoice now, or None when they can."""
    if cycle.bill.kind is not BillKind.RECEIPT:
        return Refusal.NOT_A_RECEIPT
    if cycle.invoice is not None:
        return Refusal.INVOICED
    if not in_window(cycle.bill.ticket.sold_at, now, parse_policy(issuer.window_policy)):
        return Refusal.OUT_OF_WINDOW
    if profile_of(session, account_id) is None:
        return Refusal.NO_PROFILE
    return None


def ask_invoice(
    session: Session,
    stamping: Stamping,
    cycle: Cycle,
    issuer: Issuer,
    account_id: int,
    key: str,
    now: datetime,
) -> Outcome:
    """Invoice the bill's sale to the account's saved fiscal data, through the one stamping
    road (the bill's ticket, as a ticket of the billing branch; `key` makes a second press
    of the same form answer the same invoice), and mark it as the service account's so the
    panel lists it to every holder of its lines. The caller checked `refusal` first."""
    profile = profile_of(session, account_id)
    ticket = cycle.bill.ticket
    email = profile.emails[0].email if profile.emails else None
    request = issue.Request(
        branch_id=ticket.branch_id,
        ticket_ids=[ticket.id],
        receptor=receptor_of(profile),
        forma_pago=forma_pago_for(issuer, ticket.forma_pago),
        email=email,
        idempotency_key=key,
        account_id=account_id,
        service_account_id=cycle.bill.service_account_id,  # set with the reservation
    )
    return stamping.issue(session, request, issuer, now)
