"""The stamping state machine: draft → signed → stamping → stamped | failed.

`reserve` takes the tickets for one new invoice under lock (PostgreSQL row locks, SQLite's
write lock), gives it the issuer's next folio and commits a draft: at most one invoice holds
a ticket (partial unique index on invoice_ticket) and an idempotency key gives back the
invoice it created. `stamp` then signs, validates and stamps, committing each state before
the next step, so a crash leaves a record that says where it stopped: one stuck in
"stamping" is resolved by `reconcile`, which asks the provider and never stamps twice.
"""

from __future__ import annotations

import logging
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
from webapp.fiscal.limits import NOMBRE_MAX
from webapp.fiscal.receptor import Receptor
from webapp.issuing import credits, sri_invoice
from webapp.issuing.ownership import owner_of
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    Ticket,
    TicketStatus,
    invoice_ticket,
    new_public_id,
    utcnow,
)

INVOICEABLE = (TicketStatus.OPEN, TicketStatus.IN_GLOBAL)
log = logging.getLogger(__name__)


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
    service_account_id: int | None = None  # a service bill's invoice: the account it bills


def by_key(session: Session, key: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.idempotency_key == key))


def reserve(session: Session, request: Request, now: datetime) -> Invoice:
    """Commit a draft invoice holding the tickets, or return the one made with this key.

    Raises TicketsTaken when a ticket is held by another invoice or not invoiceable, and
    credits.Refused when the issuer may not stamp (no stamp credits, licence expired): a
    metered issuer pays the invoice's credit in this transaction (webapp.issuing.credits).
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
            invoice = _recycled_or_new(session, issuer, branch)
            _fill(invoice, request, branch, tickets, now)
            invoice.account_id = owner_of(
                session, request.receptor.rfc, request.email, request.account_id
            )
            invoice.service_account_id = request.service_account_id
        session.flush()
        credits.take(session, issuer, invoice, now)  # Refused: nothing reserved
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


def _recycled_or_new(session: Session, issuer: Issuer, branch: Branch | None = None) -> Invoice:
    """A failed invoice of the issuer gives its folio to the next one (no gaps); else a new
    folio from the counter, which the caller holds locked.

    Ecuador: the series is the branch's establecimiento and punto de emisión and the folio its
    secuencial, counted on the branch row, locked here (gap-free per estab-ptoEmi: a refused
    factura's secuencial goes to the next one of the same series)."""
    ecuador = issuer.country == "EC"
    if ecuador:
        if branch is None or not (branch.estab and branch.pto_emi):
            raise ValueError(f"branch {branch and branch.code} has no establecimiento/punto")
        session.execute(select(Branch.id).where(Branch.id == branch.id).with_for_update()).all()
        session.refresh(branch, ["next_secuencial"])
        serie = f"{branch.estab}-{branch.pto_emi}"
    else:
        serie = issuer.serie
    failed = session.scalar(
        select(Invoice)
        .where(
            Invoice.issuer_id == issuer.id,
            Invoice.status == InvoiceStatus.FAILED,
            *((Invoice.serie == serie,) if ecuador else ()),
        )
        .order_by(Invoice.folio)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if failed is not None:
        session.execute(invoice_ticket.delete().where(invoice_ticket.c.invoice_id == failed.id))
        failed.status = InvoiceStatus.DRAFT
        failed.public_id = new_public_id()  # whoever asked for the failed one keeps its URL
        failed.error = None
        failed.xml = failed.pdf = failed.uuid = None
        failed.access_key = failed.authority_state = None
        failed.is_global, failed.needs_correction = False, False
        failed.global_periodicity = failed.global_months = None
        failed.global_year = failed.global_period_start = None
        failed.service_account_id = None
        return failed
    if ecuador:
        invoice = Invoice(issuer=issuer, serie=serie, folio=branch.next_secuencial)
        branch.next_secuencial += 1
    else:
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
    pago, delivery address and the totals of `tickets`. Ecuador: the comprador's tipo de
    identificación and dirección too, SRI's totals (issuing.sri_invoice), in USD."""
    invoice.branch_id = branch_id
    invoice.idempotency_key = key
    invoice.fecha = now.replace(microsecond=0)
    invoice.receptor_rfc, invoice.receptor_nombre = receptor.rfc, receptor.nombre
    invoice.receptor_cp, invoice.receptor_regimen = receptor.cp, receptor.regimen
    invoice.uso_cfdi = receptor.uso_cfdi
    invoice.receptor_id_type = receptor.id_type or None
    invoice.receptor_address = receptor.address or None
    invoice.forma_pago, invoice.metodo_pago = forma_pago, "PUE"
    if invoice.issuer.country == "EC":
        # What SRI's schema can carry, within the columns (the forms check before; a bill's
        # holder data comes from the provider's API).
        invoice.receptor_nombre = sri_invoice.clean_text(receptor.nombre, NOMBRE_MAX)
        invoice.receptor_address = sri_invoice.clean_text(receptor.address, 300) or None
        figures = sri_invoice.totals(list(tickets))
        invoice.currency = "USD"
        invoice.subtotal, invoice.total = figures.total_sin_impuestos, figures.importe_total
        invoice.taxes = figures.iva
    else:
        amounts = totals([line for t in tickets for line in ticket_lines(t)])
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
    on_stamped: Callable[[Invoice], None] | None = None,
    wait_seconds: float = 2.0,
    make: Callable[[Invoice], tuple[bytes, dict]] | None = None,
) -> Invoice:
    """Take a reserved invoice to stamped, committing each state; StampingFailed if the
    document cannot be made (it never reached the PAC) or the PAC refuses it: either way it
    is recorded as failed and its tickets and folio are free again. A PacError that may
    succeed later (no answer) leaves it in "stamping" for reconcile.

    Each transition is a conditional UPDATE, so of concurrent requests for one invoice only
    one signs and only one calls the PAC; the others wait for its outcome up to
    `wait_seconds` and return the invoice as it then stands (still "stamping": the caller
    shows a page that waits). `signer` may be a function giving the Signer, called only when
    the invoice must be signed. `on_stamped` runs inside the commit that records the stamp
    (queue the email there: same transaction). `make` builds and signs another country's
    document instead of a CFDI: it answers the signed XML and other columns to record with it
    (an SRI factura's clave de acceso); `signer` is then unused.
    """
    if invoice.status is InvoiceStatus.DRAFT:
        try:
            if make is not None:
                xml, values = make(invoice)
            else:
                xml = sign(build(draft_of(invoice)), signer() if callable(signer) else signer)
                validate(xml)
                values = {}
        except PacError as error:
            raise _failed(session, invoice, error) from error
        except Exception as exc:  # noqa: BLE001 - a document that cannot be made: released
            error = PacError("documento", f"{type(exc).__name__}: {exc}", retryable=False)
            raise _failed(session, invoice, error) from exc
        _advance(session, invoice, InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, xml=xml, **values)
    if invoice.status is InvoiceStatus.SIGNED and _advance(
        session, invoice, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING
    ):
        try:
            stamped = pac.stamp(invoice.xml)
        except PacError as error:
            if error.retryable:  # the outcome is unknown: reconcile decides
                raise
            raise _failed(session, invoice, error) from error
        record(session, invoice, stamped, test=pac.test, on_stamped=on_stamped)
        return invoice
    deadline = time.monotonic() + wait_seconds
    while invoice.status in PENDING and time.monotonic() < deadline:
        time.sleep(0.05)
        session.refresh(invoice)
        session.commit()
    if invoice.status is InvoiceStatus.FAILED:
        raise StampingFailed(invoice, PacError("failed", invoice.error or "", retryable=False))
    return invoice


PENDING = (InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING)
"""The states of an invoice on its way to the PAC."""


def _failed(session: Session, invoice: Invoice, error: PacError) -> StampingFailed:
    session.rollback()
    session.refresh(invoice)
    if invoice.status in PENDING:
        fail(session, invoice, error)
    return StampingFailed(invoice, error)


def _advance(session: Session, invoice: Invoice, old, new, **values) -> bool:
    """Move `invoice` from state `old` to `new` if nobody did it first; reload it either way.

    The idempotency key is part of the condition: a failed invoice's row is reused for the
    next one (its folio), and a process that lost track of it must not move the new one."""
    won = (
        session.execute(
            update(Invoice)
            .where(
                Invoice.id == invoice.id,
                Invoice.status == old,
                _same_key(invoice.idempotency_key),
            )
            .values(status=new, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    session.commit()
    session.refresh(invoice)
    return won


def back_to_signed(session: Session, invoice: Invoice) -> bool:
    """A "stamping" invoice the provider says it never stamped goes back to "signed", to be
    sent again (the same document: the provider never stamps it twice)."""
    return _advance(session, invoice, InvoiceStatus.STAMPING, InvoiceStatus.SIGNED)


def _same_key(key: str | None):
    return Invoice.idempotency_key.is_(None) if key is None else Invoice.idempotency_key == key


def record(
    session: Session,
    invoice: Invoice,
    stamped: Stamped,
    *,
    test: bool,
    on_stamped: Callable[[Invoice], None] | None,
) -> bool:
    """Record the PAC's stamp of an invoice in "stamping", and queue what follows it in the
    same commit; False when another process recorded it first (then nothing is queued).

    The PDF is not rendered here: it is a representation of the stamped XML, made after this
    commit, by the mail worker for the email or on the first download (then kept), so the
    customer's answer does not wait for it. Nothing after the PAC's answer may leave the stamp
    unrecorded: a failing `on_stamped` is rolled back alone (to its savepoint) and logged.
    """
    won = (
        session.execute(
            update(Invoice)
            .where(Invoice.id == invoice.id, Invoice.status == InvoiceStatus.STAMPING)
            .values(
                status=InvoiceStatus.STAMPED,
                xml=stamped.xml,
                uuid=stamped.uuid,
                stamped_at=stamped.fecha_timbrado,
                test_stamp=test,
                error=None,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    if not won:
        session.rollback()
        session.refresh(invoice)
        return False
    session.refresh(invoice)
    if on_stamped is not None:
        try:
            with session.begin_nested():
                on_stamped(invoice)
        except Exception:  # noqa: BLE001 - the stamp is the legal record: it is kept
            log.exception("after-stamp step of invoice %s failed; the stamp is kept", invoice.id)
    session.commit()
    return True


def fail(session: Session, invoice: Invoice, error: Exception) -> bool:
    """Record that `invoice` will not be stamped and free its tickets, which stay
    invoiceable; its folio goes to the next invoice, and the stamp credit it paid goes back
    to its issuer. Only an invoice still on its way (draft, signed, stamping) under the same
    idempotency key: False when another process settled it.
    """
    failed = session.execute(
        update(Invoice)
        .where(
            Invoice.id == invoice.id,
            Invoice.status.in_(PENDING),
            _same_key(invoice.idempotency_key),
        )
        .values(
            status=InvoiceStatus.FAILED,
            error=str(error)[:2000],
            idempotency_key=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not failed:
        session.rollback()
        session.refresh(invoice)
        return False
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
    credits.refund(session, invoice)  # its credit back: the next reservation pays again
    session.commit()
    session.refresh(invoice)
    return True


ABANDONED_AFTER = timedelta(seconds=30)
"""A draft or signed invoice untouched this long was left by a process that died: signing
takes milliseconds. It never reached the PAC, so it may be released or finished safely (and
should a living process still be at it, the conditional transitions let only one go on)."""


def abandoned(session: Session, now: datetime, after: timedelta = ABANDONED_AFTER):
    """Invoices on their way to the PAC and untouched for `after`: drafts and signed ones left
    by a dead process, and "stamping" ones whose answer never came (ask the PAC first)."""
    return session.scalars(
        select(Invoice)
        .where(Invoice.status.in_(PENDING), Invoice.updated_at < now - after)
        .order_by(Invoice.id)
    ).all()


def release_abandoned(
    session: Session, ticket_id: int, now: datetime, after: timedelta = ABANDONED_AFTER
) -> bool:
    """Free a ticket held by an abandoned draft or signed invoice (never sent to the PAC), so
    the customer's next press invoices it; True when one was released."""
    holder = session.scalar(
        select(Invoice)
        .join(invoice_ticket, invoice_ticket.c.invoice_id == Invoice.id)
        .where(
            invoice_ticket.c.ticket_id == ticket_id,
            invoice_ticket.c.active,
            Invoice.status.in_((InvoiceStatus.DRAFT, InvoiceStatus.SIGNED)),
            Invoice.updated_at < now - after,
        )
    )
    if holder is None:
        return False
    log.warning(
        "invoice %s abandoned in %s: released for ticket %s", holder.id, holder.status, ticket_id
    )
    return fail(session, holder, PacError("abandonada", "Abandonada antes de timbrarse"))
