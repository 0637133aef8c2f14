"""Factura global: one CFDI per branch and period to the público en general.

A period (c_Periodicidad 01 diario, 02 semanal, 03 quincenal, 04 mensual, 05 bimestral) is a
range of days in Mexico City time; a week runs Monday to Sunday and is cut at the month's
end, so every period but a bimestral one lies in one month (c_Meses 01..12; bimestral periods
are 13..18). Once the period is over, `reserve_global` takes every OPEN ticket of the branch
sold in it, under the same lock and with the same folio counter as an individual invoice,
and the tickets become IN_GLOBAL; `issue.stamp` then signs and stamps it like any invoice
(`issue.draft_of` asks `global_content` for its conceptos).

Each ticket is a Concepto per SAT's guide: ClaveProdServ 01010101, ClaveUnidad ACT, Cantidad
1, Descripcion "Venta", NoIdentificacion the ticket number and ValorUnitario its subtotal, one
Concepto per tax rate of the ticket; should the rate applied to the summed subtotal round to
another cent than the ticket's own lines did, the ticket's lines are Conceptos one by one, so
the global's Total is always the sum of the tickets' printed totals.

FormaPago follows SAT's guide for a payment made with several forms: the form of the greatest
amount. Each ticket's total counts for its own forma de pago (01, efectivo, when the point of
sale did not say), the form whose tickets add up to the most wins, and a tie goes to the lower
code (`forma_pago`).

When a customer later invoices a ticket of a global (issuer policy "flag"), `issue.reserve`
deactivates the global's link and flags it `needs_correction`; `correct` cancels it with
motive 04 and reissues it, with a new folio, for the tickets it still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from webapp.cfdi.amounts import ZERO, Totals, line_importe, line_tax, totals
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.draft import PUBLICO_EN_GENERAL_RFC, GlobalInfo, Line
from webapp.db import lock_for_write
from webapp.issuing import credits, issue
from webapp.models import (
    Branch,
    CancelStatus,
    Invoice,
    InvoiceStatus,
    Issuer,
    Ticket,
    TicketStatus,
    invoice_ticket,
)
from webapp.tickets import payment

PUBLICO_EN_GENERAL = "PUBLICO EN GENERAL"
REGIMEN_SIN_OBLIGACIONES = "616"  # Sin obligaciones fiscales
USO_SIN_EFECTOS = "S01"  # Sin efectos fiscales
# A ticket pushed without its forma de pago counts as paid in cash, the usual público-en-general
# payment (see `forma_pago`).
FORMA_PAGO_EFECTIVO = "01"
CLAVE_VENTA = "01010101"  # No existe en el catálogo (SAT's key for the global's Conceptos)
UNIDAD_ACTIVIDAD = "ACT"
DESCRIPCION = "Venta"
MOTIVE_GLOBAL = "04"  # Operación nominativa relacionada en una factura global
REGIMEN_RIF = "621"  # Incorporación Fiscal: the only one allowed bimestral periods

DAILY, WEEKLY, FORTNIGHTLY, MONTHLY, BIMONTHLY = "01", "02", "03", "04", "05"
PERIODICITIES = (DAILY, WEEKLY, FORTNIGHTLY, MONTHLY, BIMONTHLY)


class GlobalError(Exception):
    """A factura global cannot be made as asked; `code` says why."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Period:
    """Days [start, end) in Mexico City of one periodicity."""

    periodicity: str
    start: date
    end: date  # exclusive

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def months(self) -> str:
        """c_Meses: the month, or 13..18 for a bimestral period (enero-febrero = 13)."""
        if self.periodicity == BIMONTHLY:
            return f"{12 + (self.start.month + 1) // 2:02d}"
        return f"{self.start.month:02d}"

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        return tuple(  # type: ignore[return-value]
            datetime.combine(day, time(), MEXICO_CITY).astimezone(UTC)
            for day in (self.start, self.end)
        )

    def is_over(self, now: datetime) -> bool:
        return now >= self.utc_bounds()[1]

    def info(self) -> GlobalInfo:
        return GlobalInfo(periodicidad=self.periodicity, meses=self.months, año=self.year)

    def key(self, branch_id: int) -> str:
        """The idempotency key of the branch's global for this period."""
        return f"global:{branch_id}:{self.periodicity}:{self.start.isoformat()}"


def period_of(periodicity: str, day: date) -> Period:
    """The period of `periodicity` that holds `day`."""
    first = day.replace(day=1)
    next_month = _first_of_next_month(day)
    if periodicity == DAILY:
        return Period(periodicity, day, day + timedelta(days=1))
    if periodicity == WEEKLY:
        monday = day - timedelta(days=day.weekday())
        return Period(periodicity, max(monday, first), min(monday + timedelta(days=7), next_month))
    if periodicity == FORTNIGHTLY:
        if day.day <= 15:
            return Period(periodicity, first, first.replace(day=16))
        return Period(periodicity, first.replace(day=16), next_month)
    if periodicity == MONTHLY:
        return Period(periodicity, first, next_month)
    if periodicity == BIMONTHLY:
        start = first.replace(month=first.month - (first.month - 1) % 2)
        return Period(periodicity, start, _first_of_next_month(_first_of_next_month(start)))
    raise GlobalError("periodicity", periodicity)


def period_from_start(periodicity: str, start: date) -> Period:
    return period_of(periodicity, start)


def local_today(now: datetime) -> date:
    return now.astimezone(MEXICO_CITY).date()


def check_period(issuer: Issuer, period: Period, now: datetime) -> None:
    """GlobalError unless a global may be issued now for `period`.

    SAT: the period must be over; Año is the year of the Fecha or the one before; only the
    Régimen de Incorporación Fiscal (621) issues bimestral globals.
    """
    if period.periodicity == BIMONTHLY and issuer.regimen_fiscal != REGIMEN_RIF:
        raise GlobalError("bimonthly_needs_rif")
    if not period.is_over(now):
        raise GlobalError("not_over")
    if period.year < local_today(now).year - 1:
        raise GlobalError("too_old")


# --- Conceptos -------------------------------------------------------------------------------


def _concept(ticket: Ticket, amount: Decimal, like) -> Line:
    return Line(
        description=DESCRIPCION,
        clave_prod_serv=CLAVE_VENTA,
        clave_unidad=UNIDAD_ACTIVIDAD,
        quantity=Decimal(1),
        unit_price=amount,
        objeto_imp=like.objeto_imp,
        tax_factor=like.tax_factor,
        tax_rate=None if like.tax_rate is None else Decimal(like.tax_rate),
        no_identificacion=ticket.ticket_number,
    )


def ticket_concepts(ticket: Ticket) -> list[Line]:
    """The Conceptos of one ticket: one per tax treatment, or its lines one by one when the
    summed subtotal's tax would round to another cent than the lines' taxes."""
    groups: dict[tuple, list] = {}
    for line in ticket.lines:
        if line_importe(line) == ZERO:
            continue  # adds nothing, and a taxed Concepto needs an amount
        rate = None if line.tax_rate is None else Decimal(line.tax_rate)
        groups.setdefault((line.objeto_imp, line.tax_factor, rate), []).append(line)
    concepts = []
    for lines in groups.values():
        subtotal = sum((line_importe(line) for line in lines), ZERO)
        concept = _concept(ticket, subtotal, lines[0])
        taxes = [line_tax(line) for line in lines]
        expected = None if taxes[0] is None else sum(taxes, ZERO)
        if line_tax(concept) == expected:
            concepts.append(concept)
        else:
            concepts.extend(_concept(ticket, line_importe(line), line) for line in lines)
    return concepts


def global_lines(tickets: Iterable[Ticket]) -> list[Line]:
    return [line for ticket in tickets for line in ticket_concepts(ticket)]


# --- Preview ---------------------------------------------------------------------------------


def _open_tickets(branch_id: int, period: Period):
    start, end = period.utc_bounds()
    return (
        select(Ticket)
        .where(
            Ticket.branch_id == branch_id,
            Ticket.status == TicketStatus.OPEN,
            Ticket.sold_at >= start,
            Ticket.sold_at < end,
        )
        .order_by(Ticket.sold_at, Ticket.id)
    )


@dataclass(frozen=True)
class Preview:
    period: Period
    tickets: int
    amounts: Totals | None
    existing: Sequence[Invoice]  # globals already issued for this branch and period

    @property
    def subtotal(self) -> Decimal:
        return self.amounts.subtotal if self.amounts else ZERO

    @property
    def taxes(self) -> Decimal:
        return (self.amounts.tax_total or ZERO) if self.amounts else ZERO

    @property
    def total(self) -> Decimal:
        return self.amounts.total if self.amounts else ZERO


def globals_of(session: Session, branch_id: int, period: Period) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.is_global,
                Invoice.branch_id == branch_id,
                Invoice.global_periodicity == period.periodicity,
                Invoice.global_period_start == period.start,
                Invoice.status != InvoiceStatus.FAILED,
            )
            .order_by(Invoice.folio)
        )
    )


def preview(session: Session, branch: Branch, period: Period) -> Preview:
    tickets = session.scalars(
        _open_tickets(branch.id, period).options(selectinload(Ticket.lines))
    ).all()
    amounts = totals(global_lines(tickets)) if tickets else None
    return Preview(period, len(tickets), amounts, globals_of(session, branch.id, period))


# --- Reserving -------------------------------------------------------------------------------


def next_key(session: Session, branch_id: int, period: Period) -> str:
    """The key of a new global for the period: the period's own, or a numbered one for
    tickets that arrived after the period's global was issued."""
    base = period.key(branch_id)
    key, n = base, 1
    while (found := issue.by_key(session, key)) is not None and found.status in (
        InvoiceStatus.STAMPED,
        InvoiceStatus.CANCELLED,
    ):
        n += 1
        key = f"{base}:{n}"
    return key


def reserve_global(
    session: Session, branch_id: int, period: Period, now: datetime, key: str
) -> Invoice:
    """Commit a draft global holding every open ticket of the branch sold in `period`, or
    return the invoice made with `key`. GlobalError("no_tickets") when there is none, and
    GlobalError("no_credits" / "licence_expired") when the issuer may not stamp now
    (webapp.issuing.credits: nothing reserved)."""
    if existing := issue.by_key(session, key):
        return existing
    session.rollback()
    lock_for_write(session)
    try:
        tickets = list(
            session.scalars(
                _open_tickets(branch_id, period)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        if existing := issue.by_key(session, key):
            session.rollback()
            return existing
        if not tickets:
            raise GlobalError("no_tickets")
        invoice = _new_global(session, branch_id, period, now, key, tickets)
        session.commit()
    except IntegrityError:
        session.rollback()
        if existing := issue.by_key(session, key):
            return existing
        raise issue.TicketsTaken() from None
    except BaseException:
        session.rollback()
        raise
    return invoice


def _new_global(session, branch_id, period, now, key, tickets) -> Invoice:
    branch = session.get(Branch, branch_id)
    issuer = session.scalar(select(Issuer).where(Issuer.id == branch.issuer_id).with_for_update())
    amounts = totals(global_lines(tickets))
    with session.no_autoflush:
        invoice = issue._recycled_or_new(session, issuer)
        invoice.branch_id = branch.id
        invoice.idempotency_key = key
        invoice.fecha = now.replace(microsecond=0)
        invoice.receptor_rfc, invoice.receptor_nombre = PUBLICO_EN_GENERAL_RFC, PUBLICO_EN_GENERAL
        invoice.receptor_cp = branch.cp  # DomicilioFiscalReceptor = LugarExpedicion
        invoice.receptor_regimen, invoice.uso_cfdi = REGIMEN_SIN_OBLIGACIONES, USO_SIN_EFECTOS
        invoice.forma_pago, invoice.metodo_pago = forma_pago(tickets), "PUE"
        invoice.currency = "MXN"
        invoice.subtotal, invoice.total = amounts.subtotal, amounts.total
        invoice.taxes = amounts.tax_total or ZERO
        invoice.delivery_email = None
        invoice.account_id = None
        invoice.is_global = True
        invoice.global_periodicity = period.periodicity
        invoice.global_months = period.months
        invoice.global_year = period.year
        invoice.global_period_start = period.start
        invoice.needs_correction = False
    session.flush()
    try:  # a metered issuer pays the global's stamp credit in this transaction
        credits.take(session, issuer, invoice, now)
    except credits.Refused as refused:
        raise GlobalError(refused.code, refused.reason) from refused
    session.execute(
        invoice_ticket.insert(),
        [{"invoice_id": invoice.id, "ticket_id": t.id, "active": True} for t in tickets],
    )
    for ticket in tickets:
        ticket.status = TicketStatus.IN_GLOBAL
    return invoice


def forma_pago(tickets: Sequence[Ticket]) -> str:
    """SAT's guide: the forma de pago of the greatest amount. The form whose tickets add up to
    the greatest total; a ticket without one counts as 01 (efectivo); a tie goes to the lower
    code."""
    payments = ((t.forma_pago or FORMA_PAGO_EFECTIVO, t.total) for t in tickets)
    return payment.predominant(payments) or FORMA_PAGO_EFECTIVO


def held_tickets(session: Session, invoice: Invoice) -> list[Ticket]:
    """The tickets `invoice` holds now (active links), in sale order."""
    return list(
        session.scalars(
            select(Ticket)
            .join(invoice_ticket, invoice_ticket.c.ticket_id == Ticket.id)
            .where(invoice_ticket.c.invoice_id == invoice.id, invoice_ticket.c.active)
            .order_by(Ticket.sold_at, Ticket.id)
            .options(selectinload(Ticket.lines))
        )
    )


def global_content(session: Session, invoice: Invoice) -> tuple[tuple[Line, ...], GlobalInfo]:
    """The conceptos and InformacionGlobal of a global invoice, from the tickets it holds
    (`issue.draft_of` adds the header every invoice shares)."""
    lines = tuple(global_lines(held_tickets(session, invoice)))
    return lines, GlobalInfo(
        periodicidad=invoice.global_periodicity or DAILY,
        meses=invoice.global_months or "",
        año=invoice.global_year or 0,
    )


def period_of_invoice(invoice: Invoice) -> Period | None:
    if not invoice.is_global or invoice.global_period_start is None:
        return None
    return period_from_start(invoice.global_periodicity or DAILY, invoice.global_period_start)


# --- Stamping --------------------------------------------------------------------------------


def issue_global(
    session: Session,
    branch: Branch,
    period: Period,
    now: datetime,
    *,
    stamping,
    key: str | None = None,
) -> Invoice:
    """Check, reserve and stamp (through `stamping`, the stamping service) the branch's
    global for `period`."""
    check_period(branch.issuer, period, now)
    invoice = reserve_global(
        session, branch.id, period, now, key or next_key(session, branch.id, period)
    )
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING):
        stamping.stamp(session, invoice)
    return invoice


# --- Correction ------------------------------------------------------------------------------


def needing_correction(query_invoices) -> object:
    """`query_invoices` (a select(Invoice)) limited to globals to correct."""
    return query_invoices.where(
        Invoice.is_global, Invoice.needs_correction, Invoice.status == InvoiceStatus.STAMPED
    )


def correction_key(invoice: Invoice) -> str:
    return f"{invoice.idempotency_key or f'global:{invoice.branch_id}'}:c{invoice.folio}"[:64]


def correct(
    session: Session,
    invoice: Invoice,
    now: datetime,
    *,
    stamping,
    request_cancel: Callable | None = None,
) -> Invoice | None:
    """Cancel the global with motive 04 and reissue it for the tickets it still holds.

    Returns the new global (None when it held no ticket any more). Running it again after
    an interruption goes on where it stopped: a cancellation already asked for is not asked
    again, and the reissue is found by its key.
    """
    from webapp.issuing import cancel

    request_cancel = request_cancel or cancel.request_cancel
    if not invoice.is_global or not invoice.needs_correction:
        raise GlobalError("not_to_correct")
    period = period_of_invoice(invoice)
    if period is None:
        raise GlobalError("not_to_correct")
    # Every ticket it ever held: the cancellation releases them (open again), and those
    # invoiced on their own are held by their invoice, which _reserve_reissue leaves alone.
    remaining = [t.id for t in invoice.tickets]
    if invoice.status is InvoiceStatus.STAMPED and invoice.cancel_status in (
        None,
        CancelStatus.REJECTED,
    ):
        try:
            request_cancel(session, invoice, MOTIVE_GLOBAL, stamping.pac_for(invoice.issuer), now)
        except cancel.CancelError as error:
            raise GlobalError("cancel_refused", error.message) from error
        session.refresh(invoice)
    if invoice.cancel_status is CancelStatus.REJECTED or invoice.cancel_status is None:
        raise GlobalError("cancel_refused", invoice.cancel_error or "")
    new = _reserve_reissue(session, invoice, period, now, remaining)
    if new is not None and new.status in (
        InvoiceStatus.DRAFT,
        InvoiceStatus.SIGNED,
        InvoiceStatus.STAMPING,
    ):
        stamping.stamp(session, new)
    return new


def _reserve_reissue(
    session: Session, old: Invoice, period: Period, now: datetime, ticket_ids: Sequence[int]
) -> Invoice | None:
    key = correction_key(old)
    if existing := issue.by_key(session, key):
        return existing
    old_id, branch_id = old.id, old.branch_id
    session.rollback()
    lock_for_write(session)
    try:
        tickets = list(
            session.scalars(
                select(Ticket)
                .where(Ticket.id.in_(ticket_ids))
                .order_by(Ticket.sold_at, Ticket.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        if existing := issue.by_key(session, key):
            session.rollback()
            return existing
        # Held elsewhere by now (invoiced on their own meanwhile): not in the reissue.
        elsewhere = set(
            session.scalars(
                select(invoice_ticket.c.ticket_id).where(
                    invoice_ticket.c.ticket_id.in_(ticket_ids),
                    invoice_ticket.c.active,
                    invoice_ticket.c.invoice_id != old_id,
                )
            )
        )
        kept = [
            t
            for t in tickets
            if t.id not in elsewhere and t.status in (TicketStatus.IN_GLOBAL, TicketStatus.OPEN)
        ]
        session.execute(
            update(invoice_ticket)
            .where(invoice_ticket.c.invoice_id == old_id, invoice_ticket.c.active)
            .values(active=False)
        )
        session.execute(update(Invoice).where(Invoice.id == old_id).values(needs_correction=False))
        new = _new_global(session, branch_id, period, now, key, kept) if kept else None
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(old)
    return new
