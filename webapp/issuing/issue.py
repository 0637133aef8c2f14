"""The stamping state machine: draft → signed → stamping → stamped | failed.

`reserve` takes the tickets for one new invoice under lock (PostgreSQL row locks, SQLite's
write lock), gives it the issuer's next folio and commits a draft: at most one invoice holds
a ticket (partial unique index on invoice_ticket) and an idempotency key gives back the
invoice it created. `stamp` then signs, validates and stamps, committing each state before
the next step, so a crash leaves a record that says where it stopped: one stuck in
"stamping" is resolved by `reconcile`, which asks the provider and never stamps twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from webapp.cfdi.amounts import totals
from webapp.cfdi.builder import build, sign
from webapp.cfdi.draft import Draft, Line
from webapp.cfdi.pac import Pac, PacError, Stamped
from webapp.cfdi.xsd import validate
from webapp.db import lock_for_write
from webapp.fiscal.receptor import Receptor
from webapp.issuing.ownership import owner_of
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    Ticket,
    TicketStatus,
    invoice_ticket,
    utcnow,
)

INVOICEABLE = (TicketStatus.OPEN, TicketStatus.IN_GLOBAL)


class TicketsTaken(Exception):
    """Another invoice holds one of the tickets (it was invoiced meanwhile)."""


class StampingFailed(Exception):
    """The provider refused the document; the tickets are free again."""

    def __init__(self, invoice: Invoice, error: PacError):
        super().__init__(str(error))
        self.invoice = invoice
        self.error = error


@dataclass(frozen=True)
class Request:
    """What the customer asked for."""

    branch_id: int
    ticket_ids: Sequence[int]
    receptor: Receptor
    forma_pago: str
    email: str | None
    idempotency_key: str
    account_id: int | None = None  # the signed-in account asking, if any


def by_key(session: Session, key: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.idempotency_key == key))


def reserve(session: Session, request: Request, now: datetime) -> Invoice:
    """Commit a draft invoice holding the tickets, or return the one made with this key.

    Raises TicketsTaken when a ticket is held by another invoice or not invoiceable.
    """
    if existing := by_key(session, request.idempotency_key):
        return existing
    session.rollback()
    lock_for_write(session)
    try:
        tickets = list(
            session.scalars(
                select(Ticket)
                .where(Ticket.id.in_(request.ticket_ids))
                .order_by(Ticket.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        # Under the lock: a request with the same key may have committed while we waited.
        if existing := by_key(session, request.idempotency_key):
            session.rollback()
            return existing
        if len(tickets) != len(set(request.ticket_ids)) or any(
            t.status not in INVOICEABLE or t.branch_id != request.branch_id for t in tickets
        ):
            raise TicketsTaken()
        branch = session.get(Branch, request.branch_id)
        issuer = session.scalar(
            select(Issuer).where(Issuer.id == branch.issuer_id).with_for_update()
        )
        in_global = [t.id for t in tickets if t.status is TicketStatus.IN_GLOBAL]
        if in_global and issuer.global_policy != "flag":
            raise TicketsTaken()
        with session.no_autoflush:
            invoice = _recycled_or_new(session, issuer)
            _fill(invoice, request, branch, tickets, now)
            invoice.account_id = owner_of(
                session, request.receptor.rfc, request.email, request.account_id
            )
        session.flush()
        if in_global:
            _release_from_globals(session, in_global)
        session.execute(
            invoice_ticket.insert(),
            [{"invoice_id": invoice.id, "ticket_id": t.id, "active": True} for t in tickets],
        )
        for ticket in tickets:
            ticket.status = TicketStatus.INVOICED
        session.commit()
    except IntegrityError:
        session.rollback()
        if existing := by_key(session, request.idempotency_key):
            return existing
        raise TicketsTaken() from None
    except BaseException:
        session.rollback()
        raise
    return invoice


def _release_from_globals(session: Session, ticket_ids: list[int]) -> None:
    """Tickets of a factura global invoiced on their own: the global lets go of them (one
    active link per ticket) and is flagged, to be cancelled (motive 04) and reissued."""
    globals_ = select(Invoice.id).where(Invoice.is_global).scalar_subquery()
    held = invoice_ticket.c.ticket_id.in_(ticket_ids) & invoice_ticket.c.active
    flagged = list(session.scalars(select(invoice_ticket.c.invoice_id).where(held).distinct()))
    session.execute(
        update(invoice_ticket)
        .where(held, invoice_ticket.c.invoice_id.in_(globals_))
        .values(active=False)
    )
    session.execute(
        update(Invoice)
        .where(Invoice.id.in_(flagged), Invoice.is_global)
        .values(needs_correction=True)
        .execution_options(synchronize_session=False)
    )


def _recycled_or_new(session: Session, issuer: Issuer) -> Invoice:
    """A failed invoice of the issuer gives its folio to the next one (no gaps); else a new
    folio from the counter, which the caller holds locked."""
    failed = session.scalar(
        select(Invoice)
        .where(Invoice.issuer_id == issuer.id, Invoice.status == InvoiceStatus.FAILED)
        .order_by(Invoice.folio)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if failed is not None:
        session.execute(invoice_ticket.delete().where(invoice_ticket.c.invoice_id == failed.id))
        failed.status = InvoiceStatus.DRAFT
        failed.error = None
        failed.xml = failed.pdf = failed.uuid = None
        failed.is_global, failed.needs_correction = False, False
        failed.global_periodicity = failed.global_months = None
        failed.global_year = failed.global_period_start = None
        return failed
    invoice = Invoice(issuer=issuer, serie=issuer.serie, folio=issuer.next_folio)
    issuer.next_folio += 1
    session.add(invoice)
    return invoice


def _fill(invoice: Invoice, request: Request, branch: Branch, tickets, now: datetime) -> None:
    fill(
        invoice,
        branch_id=branch.id,
        tickets=tickets,
        receptor=request.receptor,
        forma_pago=request.forma_pago,
        email=request.email,
        key=request.idempotency_key,
        now=now,
    )


def fill(
    invoice: Invoice,
    *,
    branch_id: int,
    tickets,
    receptor: Receptor,
    forma_pago: str,
    email: str | None,
    key: str,
    now: datetime,
) -> None:
    """What an individual invoice says (paid in one exhibition, MXN): its receptor, forma de
    pago, delivery address and the totals of `tickets`."""
    amounts = totals([line for t in tickets for line in ticket_lines(t)])
    invoice.branch_id = branch_id
    invoice.idempotency_key = key
    invoice.fecha = now.replace(microsecond=0)
    invoice.receptor_rfc, invoice.receptor_nombre = receptor.rfc, receptor.nombre
    invoice.receptor_cp, invoice.receptor_regimen = receptor.cp, receptor.regimen
    invoice.uso_cfdi = receptor.uso_cfdi
    invoice.forma_pago, invoice.metodo_pago = forma_pago, "PUE"
    invoice.currency = "MXN"
    invoice.subtotal, invoice.total = amounts.subtotal, amounts.total
    invoice.taxes = amounts.tax_total or Decimal("0.00")
    invoice.delivery_email = email


def ticket_lines(ticket: Ticket) -> list[Line]:
    return [
        Line(
            description=line.description,
            clave_prod_serv=line.clave_prod_serv,
            clave_unidad=line.clave_unidad,
            quantity=Decimal(line.quantity),
            unit_price=Decimal(line.unit_price),
            objeto_imp=line.objeto_imp,
            tax_factor=line.tax_factor,
            tax_rate=None if line.tax_rate is None else Decimal(line.tax_rate),
            no_identificacion=f"{ticket.ticket_number}-{line.position}",
        )
        for line in ticket.lines
    ]


def draft_of(invoice: Invoice) -> Draft:
    if invoice.is_global:
        from webapp.issuing.global_invoice import global_content

        lines, informacion_global = global_content(object_session(invoice), invoice)
    else:
        held = sorted(invoice.tickets, key=lambda t: t.id)
        lines = tuple(line for t in held for line in ticket_lines(t))
        informacion_global = None
    issuer, branch = invoice.issuer, invoice.branch
    return Draft(
        emisor_rfc=issuer.rfc,
        emisor_nombre=issuer.legal_name,
        emisor_regimen=issuer.regimen_fiscal,
        lugar_expedicion=branch.cp,
        serie=invoice.serie,
        folio=invoice.folio,
        fecha=invoice.fecha,
        receptor_rfc=invoice.receptor_rfc,
        receptor_nombre=invoice.receptor_nombre,
        receptor_cp=invoice.receptor_cp,
        receptor_regimen=invoice.receptor_regimen,
        uso_cfdi=invoice.uso_cfdi,
        forma_pago=invoice.forma_pago,
        metodo_pago=invoice.metodo_pago,
        moneda=invoice.currency,
        lines=lines,
        informacion_global=informacion_global,
        sustituye=(invoice.replaces.uuid,) if invoice.replaces and invoice.replaces.uuid else (),
    )


def stamp(
    session: Session,
    invoice: Invoice,
    *,
    signer,
    pac: Pac,
    render_pdf: Callable[[Invoice, bytes], bytes],
    on_stamped: Callable[[Invoice], None] | None = None,
    wait_seconds: float = 15.0,
) -> Invoice:
    """Take a draft to stamped, committing each state; StampingFailed if the PAC refuses.

    Each transition is a conditional UPDATE, so of concurrent requests for one invoice only
    one signs and only one calls the PAC; the others wait for its outcome (up to
    `wait_seconds`, then return the invoice still "stamping" for reconcile). `on_stamped`
    runs inside the commit that records the stamp (queue the email there: same transaction).
    """
    if invoice.status is InvoiceStatus.DRAFT:
        xml = sign(build(draft_of(invoice)), signer)
        validate(xml)
        _advance(session, invoice, InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, xml=xml)
    if invoice.status is InvoiceStatus.SIGNED and _advance(
        session, invoice, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING
    ):
        try:
            stamped = pac.stamp(invoice.xml)
        except PacError as error:
            if error.retryable:  # the outcome is unknown: reconcile decides
                raise
            fail(session, invoice, error)
            raise StampingFailed(invoice, error) from error
        _record(session, invoice, stamped, render_pdf, on_stamped)
        return invoice
    deadline = time.monotonic() + wait_seconds
    while invoice.status in (InvoiceStatus.SIGNED, InvoiceStatus.STAMPING, InvoiceStatus.DRAFT):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
        session.refresh(invoice)
        session.commit()
    if invoice.status is InvoiceStatus.FAILED:
        raise StampingFailed(invoice, PacError("failed", invoice.error or "", retryable=False))
    return invoice


def _advance(session: Session, invoice: Invoice, old, new, **values) -> bool:
    """Move `invoice` from state `old` to `new` if nobody did it first; reload it either way."""
    won = (
        session.execute(
            update(Invoice)
            .where(Invoice.id == invoice.id, Invoice.status == old)
            .values(status=new, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    session.commit()
    session.refresh(invoice)
    return won


def _record(session, invoice, stamped: Stamped, render_pdf, on_stamped) -> None:
    invoice.xml = stamped.xml
    invoice.uuid = stamped.uuid
    invoice.stamped_at = stamped.fecha_timbrado
    invoice.status = InvoiceStatus.STAMPED
    invoice.pdf = render_pdf(invoice, stamped.xml)
    if on_stamped:
        on_stamped(invoice)
    session.commit()


def fail(session: Session, invoice: Invoice, error: Exception) -> None:
    """Record a refusal and free the tickets, which stay invoiceable."""
    invoice.status = InvoiceStatus.FAILED
    invoice.error = str(error)[:2000]
    invoice.idempotency_key = None
    held = set(
        session.scalars(
            select(invoice_ticket.c.ticket_id).where(
                invoice_ticket.c.invoice_id == invoice.id, invoice_ticket.c.active
            )
        )
    )
    session.execute(
        update(invoice_ticket).where(invoice_ticket.c.invoice_id == invoice.id).values(active=False)
    )
    # Only the tickets it held: a replacement's links wait, inactive, for the original's
    # cancellation, and the original still holds its tickets.
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(held))):
        if ticket.status is TicketStatus.INVOICED or (
            invoice.is_global and ticket.status is TicketStatus.IN_GLOBAL
        ):
            ticket.status = TicketStatus.OPEN
    session.commit()


def reconcile(
    session: Session,
    *,
    pac_for: Callable[[Issuer], Pac],
    signer_for: Callable[[Issuer], object],
    render_pdf: Callable[[Invoice, bytes], bytes],
    older_than: timedelta,
    now: datetime,
) -> dict[str, int]:
    """Resolve invoices stuck in "stamping": ask the issuer's provider whether it stamped each.

    Stamped there → recorded here. Never stamped → stamped now (the provider refuses a CFDI
    whose Fecha is past the SAT's 72 h: then it fails and its tickets are freed). When the
    provider cannot answer (a retryable error), the invoice stays in "stamping" for the next
    run: freeing its tickets could give a ticket a second invoice.
    """
    outcome = {"stamped": 0, "restamped": 0, "failed": 0, "pending": 0}
    stuck = session.scalars(
        select(Invoice).where(
            Invoice.status == InvoiceStatus.STAMPING, Invoice.updated_at < now - older_than
        )
    ).all()
    for invoice in stuck:
        pac = pac_for(invoice.issuer)
        try:
            found = pac.recover(invoice.xml)
        except PacError:
            outcome["pending"] += 1
            continue
        if found is not None:
            _record(session, invoice, found, render_pdf, None)
            outcome["stamped"] += 1
            continue
        _advance(session, invoice, InvoiceStatus.STAMPING, InvoiceStatus.SIGNED)
        try:
            stamp(
                session, invoice, signer=signer_for(invoice.issuer), pac=pac, render_pdf=render_pdf
            )
            outcome["restamped"] += 1
        except StampingFailed:
            outcome["failed"] += 1  # stamp() recorded the refusal and freed the tickets
        except PacError:
            outcome["pending"] += 1  # still "stamping": the next run asks again
    return outcome
