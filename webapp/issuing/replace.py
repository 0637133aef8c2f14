"""Replacing a stamped invoice that has errors (SAT's cancellation motive 01; knows nothing of
Flask).

    new = replace(session, original, changes, now, key=..., stamping=...)

SAT's order: the replacing CFDI is issued first and names the original in CfdiRelacionados
with TipoRelacion 04 (sustitución); then the original is cancelled with motive 01, naming the
replacement's UUID. The replacement covers the same sale (the original's tickets, the same
branch, lines and totals) with corrected receptor data, forma de pago or delivery address; the
RFC stays, since an invoice made to another taxpayer is not a correction of this one (that is
motive 02, and the customer invoices the ticket again).

Until the original is cancelled it keeps its tickets: the replacement's links to them are
inactive, and the cancellation hands them over (`cancel._release_tickets`). Running `replace`
again after an interruption goes on where it stopped: the replacement is found (by its key,
or as the original's live replacement) and not issued twice, and the cancellation is asked
only while none is pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.fiscal.receptor import Receptor
from webapp.issuing import cancel, credits, issue
from webapp.models import CancelStatus, Invoice, InvoiceStatus, Issuer, Ticket, invoice_ticket

MOTIVE_REPLACED = "01"  # Comprobante emitido con errores con relación
LIVE = (
    InvoiceStatus.DRAFT,
    InvoiceStatus.SIGNED,
    InvoiceStatus.STAMPING,
    InvoiceStatus.STAMPED,
)


class ReplaceError(Exception):
    """The invoice cannot be replaced; `code` says why: "not_stamped", "global",
    "cancel_pending", "other_rfc", or the issuer may not stamp now: "no_credits",
    "licence_expired" (webapp.issuing.credits)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Changes:
    """What the replacement says differently: the receptor's data (same RFC), the forma de
    pago and where it is emailed (None: not emailed)."""

    receptor: Receptor
    forma_pago: str
    email: str | None


def check(original: Invoice) -> None:
    """Raise ReplaceError unless `original` can be replaced now."""
    if original.is_global:
        raise ReplaceError("global")
    if original.status is not InvoiceStatus.STAMPED:
        raise ReplaceError("not_stamped")
    if original.cancel_status is CancelStatus.PENDING:
        raise ReplaceError("cancel_pending")


def replacement_of(session: Session, original: Invoice) -> Invoice | None:
    """The invoice replacing `original` (being issued or stamped, not cancelled), if any."""
    return session.scalar(
        select(Invoice)
        .where(Invoice.replaces_id == original.id, Invoice.status.in_(LIVE))
        .order_by(Invoice.id.desc())
        .limit(1)
    )


def replace(
    session: Session,
    original: Invoice,
    changes: Changes,
    now: datetime,
    *,
    key: str,
    stamping,
    staff_id: int | None = None,
) -> Invoice:
    """Issue the replacement of `original` (or find it) through `stamping` (the stamping
    service: its `stamp` and `pac_for`) and cancel `original` with motive 01.

    Raises ReplaceError when `original` cannot be replaced, issue.StampingFailed when the PAC
    refuses the replacement (nothing else changed), and cancel.CancelError when the PAC
    refuses the cancellation (the replacement is stamped: ask again from the original's page).
    """
    if changes.receptor.rfc != original.receptor_rfc:
        raise ReplaceError("other_rfc")
    new = _reserve(session, original, changes, now, key)
    if new.status in (InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING):
        stamping.stamp(session, new)
    session.refresh(original)
    if (
        new.status is InvoiceStatus.STAMPED
        and original.status is InvoiceStatus.STAMPED
        and original.cancel_status is not CancelStatus.PENDING
    ):
        asked = max(now, new.stamped_at or now)  # after the stamp, whatever the PAC's clock
        pac = stamping.pac_for(original.issuer)
        cancel.request_cancel(
            session, original, MOTIVE_REPLACED, pac, asked, new.uuid, staff_id=staff_id
        )
    return new


def _reserve(
    session: Session, original: Invoice, changes: Changes, now: datetime, key: str
) -> Invoice:
    """Commit the replacement's draft (a new folio, the original's tickets by inactive
    links), or return the one already made."""
    if existing := issue.by_key(session, key) or replacement_of(session, original):
        return existing
    check(original)
    original_id = original.id
    session.rollback()
    lock_for_write(session)
    try:
        original = session.scalar(
            select(Invoice)
            .where(Invoice.id == original_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if existing := issue.by_key(session, key) or replacement_of(session, original):
            session.rollback()
            return existing
        check(original)
        held = list(
            session.scalars(
                select(Ticket)
                .join(invoice_ticket, invoice_ticket.c.ticket_id == Ticket.id)
                .where(invoice_ticket.c.invoice_id == original.id, invoice_ticket.c.active)
                .order_by(Ticket.id)
            )
        )
        issuer = session.scalar(
            select(Issuer).where(Issuer.id == original.issuer_id).with_for_update()
        )
        with session.no_autoflush:
            new = issue._recycled_or_new(session, issuer)
            _fill(new, original, held, changes, now, key)
        session.flush()
        try:  # a metered issuer pays the replacement's stamp credit in this transaction
            credits.take(session, issuer, new, now)
        except credits.Refused as refused:
            raise ReplaceError(refused.code) from refused
        if held:
            session.execute(
                invoice_ticket.insert(),
                [{"invoice_id": new.id, "ticket_id": t.id, "active": False} for t in held],
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return new


def _fill(
    new: Invoice,
    original: Invoice,
    tickets: list[Ticket],
    changes: Changes,
    now: datetime,
    key: str,
) -> None:
    issue.fill(
        new,
        branch_id=original.branch_id,
        tickets=tickets,
        receptor=changes.receptor,
        forma_pago=changes.forma_pago,
        email=changes.email,
        key=key,
        now=now,
    )
    new.replaces_id = original.id
    new.account_id = original.account_id
