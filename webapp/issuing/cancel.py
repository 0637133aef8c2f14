"""Cancelling a stamped invoice through its PAC (knows nothing of Flask).

    invoice = request_cancel(session, invoice, "02", pac, now)
    invoice = request_cancel(session, invoice, "01", pac, now, replacement_uuid=new.uuid)
    invoice = refresh(session, invoice, pac, now)     # a pending one: did the receptor answer?

SAT's motives: 01 errors with a relation (the replacing CFDI, issued first, is named), 02
errors without relation, 03 the operation did not happen, 04 a nominative operation included
in a factura global. The outcome is immediate ("cancelled") or "pending" until the receptor
accepts ("cancelled") or rejects ("rejected", the invoice stays valid and may be asked again).

The invoice holds the latest request (Invoice.cancel_*); every request is kept in
CancelRequest, the history. A request is marked pending in a conditional UPDATE before the
PAC is called, so two clicks never send it twice. Once cancelled, the invoice's tickets are
released (their invoice_ticket link inactive, the tickets open again) except for motive 01,
where the replacing invoice takes them over.

Motive 01's replacement must be a stamped invoice of the same issuer, stamped before the
request, whose CFDI names the cancelled one (CfdiRelacionados, TipoRelacion 04): one issued by
`webapp.issuing.replace`, which then asks for this cancellation itself.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from webapp.cfdi.pac import CANCEL_MOTIVES, CancelResult, Pac, PacError
from webapp.i18n_marker import N_, spanish
from webapp.issuing import retention
from webapp.models import (
    CancelRequest,
    CancelStatus,
    Invoice,
    InvoiceStatus,
    Ticket,
    TicketStatus,
    invoice_ticket,
    utcnow,
)

# SAT's descriptions (catálogo de motivos de cancelación).
MOTIVES = {
    "01": "Comprobante emitido con errores con relación",
    "02": "Comprobante emitido con errores sin relación",
    "03": "No se llevó a cabo la operación",
    "04": "Operación nominativa relacionada en una factura global",
}
assert tuple(MOTIVES) == CANCEL_MOTIVES
NOT_REQUESTED = "sin-solicitud"  # PacError code: the provider has no such request
_UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


class CancelError(Exception):
    """The request cannot be made, or the PAC refused it; `field` names the form field the
    message belongs next to ("motive", "replacement_uuid"), or None for the whole request.

    `msgid` (Spanish, marked with N_) and `params` are for the view to translate;
    `message` is the Spanish text."""

    def __init__(self, msgid: str, field: str | None = None, **params: object) -> None:
        self.msgid, self.params = msgid, params
        self.message = spanish(msgid, params)
        super().__init__(self.message)
        self.field = field

    def translated(self, gettext) -> str:
        return gettext(self.msgid, **self.params)


def request_cancel(
    session: Session,
    invoice: Invoice,
    motive: str,
    pac: Pac,
    now: datetime,
    replacement_uuid: str | None = None,
    *,
    staff_id: int | None = None,
) -> Invoice:
    """Ask the PAC to cancel `invoice` with `motive`; the invoice with the outcome recorded
    (committed). Raises CancelError for a request that cannot be made or that the PAC refused
    (nothing changes then but Invoice.cancel_error and the history)."""
    replacement = _check(session, invoice, motive, replacement_uuid, now)
    xml = retention.files_of(session, invoice).xml
    if xml is None:
        raise CancelError(N_("Esta factura no tiene su XML timbrado: no se puede cancelar."))
    previous = invoice.cancel_status
    # Claim the request: of two concurrent requests only one finds the invoice free.
    claimed = session.execute(
        update(Invoice)
        .where(
            Invoice.id == invoice.id,
            Invoice.status == InvoiceStatus.STAMPED,
            or_(Invoice.cancel_status.is_(None), Invoice.cancel_status == CancelStatus.REJECTED),
        )
        .values(
            cancel_status=CancelStatus.PENDING,
            cancel_motive=motive,
            cancel_replacement_uuid=replacement.uuid if replacement else None,
            cancel_requested_at=now,
            cancel_error=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    session.refresh(invoice)
    if claimed != 1:
        raise CancelError(_busy_message(invoice))
    history = CancelRequest(
        invoice_id=invoice.id,
        motive=motive,
        replacement_uuid=invoice.cancel_replacement_uuid,
        status=CancelStatus.PENDING,
        staff_id=staff_id,
        requested_at=now,
    )
    session.add(history)
    session.commit()
    try:
        result = pac.cancel(xml, motive, invoice.cancel_replacement_uuid)
    except PacError as error:
        if error.retryable:  # whether SAT got it is unknown: stays pending, refresh asks
            invoice.cancel_error = error.message
            history.message = error.message
            session.commit()
            return invoice
        invoice.cancel_status = previous
        invoice.cancel_error = error.message
        history.status = None
        history.message = error.message
        history.answered_at = now
        session.commit()
        raise CancelError(
            N_("El PAC rechazó la solicitud: %(detail)s"),
            "replacement_uuid" if motive == "01" and "sustituci" in error.message else None,
            detail=error.message,
        ) from error
    _apply(session, invoice, history, result, now)
    return invoice


def refresh(session: Session, invoice: Invoice, pac: Pac, now: datetime) -> Invoice:
    """Ask the PAC where a pending cancellation stands and record it (committed); any other
    invoice is returned as it is. CancelError when the PAC cannot tell."""
    if invoice.cancel_status is not CancelStatus.PENDING:
        return invoice
    xml = retention.files_of(session, invoice).xml
    history = _latest(session, invoice)
    try:
        result = pac.cancel_status(xml) if xml is not None else None
    except PacError as error:
        invoice.cancel_error = error.message
        if error.code == NOT_REQUESTED:  # the request never reached the PAC: not pending
            invoice.cancel_status = None
            if history is not None:
                history.status, history.message, history.answered_at = None, error.message, now
        session.commit()
        raise CancelError(
            N_("El PAC no pudo informar el estado: %(detail)s"), detail=error.message
        ) from error
    if result is None:
        raise CancelError(N_("Esta factura no tiene su XML timbrado."))
    _apply(session, invoice, history, result, now)
    return invoice


def refresh_pending(session: Session, invoices, pac: Pac, now: datetime) -> dict[str, int]:
    """refresh() each pending invoice of `invoices` (a select(Invoice) already scoped);
    how many ended in each state."""
    outcome = {"cancelled": 0, "rejected": 0, "pending": 0, "error": 0}
    pending = session.scalars(
        invoices.where(Invoice.cancel_status == CancelStatus.PENDING).order_by(Invoice.id)
    ).all()
    for invoice in pending:
        try:
            refresh(session, invoice, pac, now)
        except CancelError:
            outcome["error"] += 1
            continue
        outcome[invoice.cancel_status.value] += 1
    return outcome


def history_of(session: Session, invoice: Invoice) -> list[CancelRequest]:
    """Every cancellation request of the invoice, newest first."""
    return list(
        session.scalars(
            select(CancelRequest)
            .where(CancelRequest.invoice_id == invoice.id)
            .order_by(CancelRequest.requested_at.desc(), CancelRequest.id.desc())
        )
    )


def _busy_message(invoice: Invoice) -> str:
    if invoice.status is InvoiceStatus.CANCELLED:
        return N_("Esta factura ya está cancelada.")
    if invoice.cancel_status is CancelStatus.PENDING:
        return N_(
            "Ya hay una solicitud de cancelación en proceso; espere la respuesta del receptor."
        )
    return N_("Sólo se puede cancelar una factura timbrada.")


def _check(
    session: Session,
    invoice: Invoice,
    motive: str,
    replacement_uuid: str | None,
    now: datetime,
) -> Invoice | None:
    """The request's validations; the replacing invoice for motive 01."""
    if invoice.status is not InvoiceStatus.STAMPED or invoice.cancel_status is (
        CancelStatus.PENDING
    ):
        raise CancelError(_busy_message(invoice))
    if motive not in MOTIVES:
        raise CancelError(N_("Elija un motivo de cancelación de la lista."), "motive")
    text = (replacement_uuid or "").strip().upper()
    if motive != "01":
        if text:
            raise CancelError(
                N_("Sólo el motivo 01 lleva el UUID de la factura que sustituye a esta."),
                "replacement_uuid",
            )
        return None
    if not text:
        raise CancelError(
            N_("Con el motivo 01 escriba el UUID de la factura que sustituye a esta."),
            "replacement_uuid",
        )
    if not _UUID.fullmatch(text):
        raise CancelError(
            N_("Escriba el UUID completo (36 caracteres, como 1A2B3C4D-…)."), "replacement_uuid"
        )
    if text == invoice.uuid:
        raise CancelError(N_("La factura no puede sustituirse a sí misma."), "replacement_uuid")
    replacement = session.scalar(
        select(Invoice).where(Invoice.uuid == text, Invoice.issuer_id == invoice.issuer_id)
    )
    if replacement is None:
        raise CancelError(N_("No hay una factura de este emisor con ese UUID."), "replacement_uuid")
    if replacement.status is not InvoiceStatus.STAMPED:
        raise CancelError(
            N_("La factura que sustituye debe estar timbrada y vigente."), "replacement_uuid"
        )
    if replacement.replaces_id != invoice.id:
        raise CancelError(
            N_(
                "Esa factura no sustituye a esta: emita la sustitución con «Sustituir factura», "
                "que la relaciona (tipo de relación 04) y después cancela esta."
            ),
            "replacement_uuid",
        )
    if replacement.stamped_at is None or replacement.stamped_at > now:
        raise CancelError(
            N_("La factura que sustituye debe emitirse antes de pedir la cancelación."),
            "replacement_uuid",
        )
    return replacement


def _latest(session: Session, invoice: Invoice) -> CancelRequest | None:
    return session.scalar(
        select(CancelRequest)
        .where(CancelRequest.invoice_id == invoice.id)
        .order_by(CancelRequest.requested_at.desc(), CancelRequest.id.desc())
        .limit(1)
    )


def _apply(
    session: Session,
    invoice: Invoice,
    history: CancelRequest | None,
    result: CancelResult,
    now: datetime,
) -> None:
    status = CancelStatus(result.status)
    invoice.cancel_status = status
    invoice.cancel_error = result.message if status is CancelStatus.REJECTED else None
    if history is not None:
        history.status = status
        history.message = result.message
        if result.acuse is not None:
            acuse = result.acuse
            history.acuse = acuse.encode() if isinstance(acuse, str) else acuse
        if status is not CancelStatus.PENDING:
            history.answered_at = now
    if status is CancelStatus.CANCELLED and invoice.status is not InvoiceStatus.CANCELLED:
        invoice.status = InvoiceStatus.CANCELLED
        invoice.cancelled_at = now
        _release_tickets(session, invoice)
    session.commit()


def _release_tickets(session: Session, invoice: Invoice) -> None:
    """The tickets the invoice held: to the replacing invoice (motive 01), else open again."""
    held = and_(invoice_ticket.c.invoice_id == invoice.id, invoice_ticket.c.active.is_(True))
    ids = list(session.scalars(select(invoice_ticket.c.ticket_id).where(held)))
    if not ids:
        return
    session.execute(update(invoice_ticket).where(held).values(active=False))
    replacement = None
    if invoice.cancel_motive == "01" and invoice.cancel_replacement_uuid:
        replacement = session.scalar(
            select(Invoice).where(
                Invoice.uuid == invoice.cancel_replacement_uuid,
                Invoice.issuer_id == invoice.issuer_id,
                Invoice.status == InvoiceStatus.STAMPED,
            )
        )
    if replacement is not None:
        linked = set(
            session.scalars(
                select(invoice_ticket.c.ticket_id).where(
                    invoice_ticket.c.invoice_id == replacement.id,
                    invoice_ticket.c.ticket_id.in_(ids),
                )
            )
        )
        if linked:
            session.execute(
                update(invoice_ticket)
                .where(
                    invoice_ticket.c.invoice_id == replacement.id,
                    invoice_ticket.c.ticket_id.in_(linked),
                )
                .values(active=True)
            )
        new = [t for t in ids if t not in linked]
        if new:
            session.execute(
                invoice_ticket.insert(),
                [{"invoice_id": replacement.id, "ticket_id": t, "active": True} for t in new],
            )
        return
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(ids))):
        if ticket.status in (TicketStatus.INVOICED, TicketStatus.IN_GLOBAL):
            ticket.status = TicketStatus.OPEN
