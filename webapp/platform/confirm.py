"""The operator confirms a merchant's payment (seed 003, PASO 8).

    applied = apply(session, slip_id, staff_id, now, notify=mail)      # commits
    outcome = invoice(session, stamping, slip_id, now)                 # the platform's CFDI
    applied, outcome = confirm(session, stamping, slip_id, staff_id, now, notify=mail)
    outcome = cfdi_status(session, stamping, slip)                     # for the operator's page

Applying. Under a lock of the slip's row (PostgreSQL FOR UPDATE; SQLite's write lock), a
slip still pending (or with its proof) gets its products applied once, in one transaction:
each included line of kind
- licence: the issuer's `licence_expires_at` moves `months` × quantity months on from the
  later of now and the current expiry (a lapsed licence starts again today), and the
  Subscription of the product records it;
- stamps: `stamps` × quantity credits through the ledger (webapp.issuing.credits.add,
  reason "purchase", with the slip's id);
- design, upgrade: the Subscription of the product (quantity of the line);
then the slip is confirmed (confirmed_at, confirmed_by) and `notify(session, slip, emails)`
queues the "pago confirmado" email to the merchant's active admins, in the same commit. A
second confirmation, at once or later, finds the slip confirmed and changes nothing
(`apply` answers False); a cancelled slip or an unknown id raises NotConfirmable.

The platform's CFDI. The platform's own issuer (webapp.platform.platform_issuer) stamps an
invoice to the merchant for the payment through the one stamping road
(webapp.services.stamping.Stamping.issue), as the billing run does for a bill: the sale is a
Ticket of the issuer's branch PLATFORM_BRANCH (created when missing), number
"PAGO-<reference>", one line per included slip line (price before IVA, IVA 16 %, unit E48;
ClaveProdServ 81112100 "Servicios de internet", 43232408 for a version upgrade), and the
receptor is the merchant's fiscal data (uso G03), forma de pago 03 (transferencia), PUE. The
idempotency key is `slip_key(slip.id)`: a retry finds the invoice on its way (or a refused
one's ticket free again) and never makes a second one. The stamping road emails the invoice
(XML and PDF) through the outbox to the merchant's first active admin, in the stamp's commit;
a stamped invoice is recorded in PaymentSlip.invoice_id.

The confirmation does not wait for the CFDI: the products are applied and the slip recorded
even when the platform's issuer is not configured, cannot sign, or the PAC refuses or does
not answer. `cfdi_status` says which (for the operator's "Reintentar factura").
"""

from __future__ import annotations

import calendar
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.cfdi.amounts import ticket_total
from webapp.db import lock_for_write
from webapp.fiscal.receptor import Receptor
from webapp.issuing import issue
from webapp.issuing.branches import ensure_branch
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    PaymentSlip,
    ProductKind,
    SlipStatus,
    StaffMember,
    StaffRole,
    Subscription,
    Ticket,
    TicketLine,
    TicketStatus,
    invoice_ticket,
)
from webapp.platform.platform_issuer import platform_issuer
from webapp.services.stamping import Result, Stamping

log = logging.getLogger(__name__)

PLATFORM_BRANCH = "PLATAFORMA"
PLATFORM_BRANCH_NAME = "Pagos de la plataforma"
USO_CFDI = "G03"  # gastos en general
FORMA_PAGO = "03"  # transferencia electrónica de fondos (the slip is paid at a bank)
IVA_RATE = Decimal("0.160000")
CLAVE_SERVICES = "81112100"  # Servicios de internet
CLAVE_SOFTWARE = "43232408"  # Software de desarrollo de plataformas web
CLAVE_UNIDAD = "E48"  # unidad de servicio

CONFIRMABLE = (SlipStatus.PENDING, SlipStatus.PROOF)

Notify = Callable[[Session, PaymentSlip, list[str]], None]


class NotConfirmable(Exception):
    """`code`: "not_found" (no such slip) or "cancelled"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class CfdiState(enum.StrEnum):
    STAMPED = "stamped"  # the platform's CFDI is stamped (PaymentSlip.invoice_id)
    PENDING = "pending"  # at the PAC, no answer yet: reconcile (or a retry) settles it
    FAILED = "failed"  # refused by the PAC: `reason` says why; a retry stamps it again
    NOT_CONFIGURED = "not_configured"  # no platform issuer in the operator's settings
    UNAVAILABLE = "unavailable"  # the platform issuer cannot sign now (its CSD): `reason`
    NOT_APPLICABLE = "not_applicable"  # a merchant outside Mexico, or the platform itself
    TO_DO = "to_do"  # not tried yet (the slip is not confirmed, or nothing happened yet)


@dataclass(frozen=True)
class InvoiceOutcome:
    state: CfdiState
    invoice_id: int | None = None
    reason: str = ""  # for the operator and the log (the PAC's words, the CSD problem)


def slip_key(slip_id: int) -> str:
    """The idempotency key of a slip's CFDI: one invoice per payment, whoever asks."""
    return f"slip:{slip_id}"


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus `months` calendar months (the 31st of a shorter month: its last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def admin_emails(session: Session, issuer_id: int) -> list[str]:
    """The addresses of the issuer's active admins, oldest first."""
    return list(
        session.scalars(
            select(StaffMember.email)
            .where(
                StaffMember.issuer_id == issuer_id,
                StaffMember.role == StaffRole.ISSUER_ADMIN,
                StaffMember.active.is_(True),
            )
            .order_by(StaffMember.id)
        )
    )


# --- Applying the products --------------------------------------------------------------------


def _locked_slip(session: Session, slip_id: int) -> PaymentSlip | None:
    return session.scalar(
        select(PaymentSlip)
        .where(PaymentSlip.id == slip_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _subscribe(session: Session, issuer_id: int, product_id: int, quantity: int) -> None:
    found = session.scalar(
        select(Subscription).where(
            Subscription.issuer_id == issuer_id, Subscription.product_id == product_id
        )
    )
    if found is None:
        session.add(Subscription(issuer_id=issuer_id, product_id=product_id, quantity=quantity))
    else:
        found.quantity = quantity


def apply(
    session: Session,
    slip_id: int,
    staff_id: int | None,
    now: datetime,
    *,
    notify: Notify | None = None,
) -> bool:
    """Apply the slip's products and confirm it (commits); False when it was confirmed
    already (nothing changes). NotConfirmable for an unknown or cancelled slip."""
    from webapp.issuing import credits  # the ledger (issue #17): locks the issuer's row

    session.rollback()
    lock_for_write(session)
    try:
        slip = _locked_slip(session, slip_id)
        if slip is None:
            raise NotConfirmable("not_found")
        if slip.status is SlipStatus.CONFIRMED:
            session.rollback()
            return False
        if slip.status not in CONFIRMABLE:
            raise NotConfirmable("cancelled")
        issuer = session.scalar(
            select(Issuer)
            .where(Issuer.id == slip.issuer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for line in slip.lines:
            if not line.included or line.quantity <= 0:
                continue
            product = line.product
            if product.kind is ProductKind.LICENCE:
                current = issuer.licence_expires_at
                start = current if current is not None and current > now else now
                issuer.licence_expires_at = add_months(start, product.months * line.quantity)
                _subscribe(session, issuer.id, product.id, line.quantity)
            elif product.kind is ProductKind.STAMPS:
                credits.add(
                    session,
                    issuer,
                    product.stamps * line.quantity,
                    "purchase",
                    slip_id=slip.id,
                    note=f"{line.code} × {line.quantity}"[:200],
                )
            else:  # design, upgrade
                _subscribe(session, issuer.id, product.id, line.quantity)
        slip.status = SlipStatus.CONFIRMED
        slip.confirmed_at = now
        slip.confirmed_by_id = staff_id
        if notify is not None and (emails := admin_emails(session, issuer.id)):
            notify(session, slip, emails)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("payment slip %s of issuer %s confirmed", slip_id, slip.issuer_id)
    return True


# --- The platform's CFDI ----------------------------------------------------------------------


def platform_branch(session: Session, issuer: Issuer) -> int:
    """The id of the platform issuer's branch for the payments' sales, created when
    missing; commits."""
    return ensure_branch(session, issuer, PLATFORM_BRANCH, PLATFORM_BRANCH_NAME)


def ticket_number(slip: PaymentSlip) -> str:
    return f"PAGO-{slip.reference}"[:40]


def _lines(slip: PaymentSlip) -> list[TicketLine]:
    lines = []
    for line in slip.lines:
        if not line.included or line.quantity <= 0:
            continue
        upgrade = line.product.kind is ProductKind.UPGRADE
        lines.append(
            TicketLine(
                position=len(lines) + 1,
                description=f"{line.code} {line.description}"[:1000],
                clave_prod_serv=CLAVE_SOFTWARE if upgrade else CLAVE_SERVICES,
                clave_unidad=CLAVE_UNIDAD,
                quantity=Decimal(line.quantity),
                unit_price=Decimal(line.price),
                objeto_imp="02",
                tax_factor="Tasa",
                tax_rate=IVA_RATE,
            )
        )
    return lines


def slip_ticket(session: Session, branch_id: int, slip: PaymentSlip, now: datetime) -> int:
    """The id of the payment's sale in the platform's branch, made when missing; commits."""
    query = select(Ticket.id).where(
        Ticket.branch_id == branch_id, Ticket.ticket_number == ticket_number(slip)
    )
    if (found := session.scalar(query)) is not None:
        return found
    lines = _lines(slip)
    try:
        session.add(
            Ticket(
                branch_id=branch_id,
                order_number=slip.reference[:40],
                ticket_number=ticket_number(slip),
                sold_at=slip.confirmed_at or now,
                total=ticket_total(lines),
                currency="MXN",
                forma_pago=FORMA_PAGO,
                status=TicketStatus.OPEN,
                lines=lines,
            )
        )
        session.commit()
    except IntegrityError:  # made meanwhile by another retry
        session.rollback()
    return session.scalar(query)


def receptor_of(merchant: Issuer) -> Receptor:
    """The merchant's fiscal data, as the receptor of the platform's CFDI."""
    return Receptor(
        rfc=merchant.rfc,
        nombre=merchant.legal_name,
        cp=merchant.cp,
        regimen=merchant.regimen_fiscal,
        uso_cfdi=USO_CFDI,
    )


def _record(session: Session, slip_id: int, invoice: Invoice) -> InvoiceOutcome:
    slip = session.get(PaymentSlip, slip_id)
    if slip.invoice_id != invoice.id:
        slip.invoice_id = invoice.id
        session.commit()
    return InvoiceOutcome(CfdiState.STAMPED, invoice.id)


def _why_not(session: Session, stamping: Stamping, slip: PaymentSlip) -> InvoiceOutcome | None:
    """Why the platform cannot invoice this slip now (None: it can try)."""
    issuer = platform_issuer(session)
    if issuer is None:
        return InvoiceOutcome(CfdiState.NOT_CONFIGURED)
    if issuer.id == slip.issuer_id or issuer.country != "MX" or slip.issuer.country != "MX":
        return InvoiceOutcome(CfdiState.NOT_APPLICABLE)
    problem = stamping.readiness(issuer)
    if problem is not None:
        return InvoiceOutcome(CfdiState.UNAVAILABLE, reason=problem.detail or problem.reason)
    return None


def invoice(session: Session, stamping: Stamping, slip_id: int, now: datetime) -> InvoiceOutcome:
    """Stamp (or finish) the platform's CFDI of a confirmed slip; idempotent. Commits."""
    slip = session.get(PaymentSlip, slip_id)
    if slip is None or slip.status is not SlipStatus.CONFIRMED:
        return InvoiceOutcome(CfdiState.TO_DO)
    if slip.invoice_id is not None:
        return InvoiceOutcome(CfdiState.STAMPED, slip.invoice_id)
    found = issue.by_key(session, slip_key(slip.id))
    if found is not None and found.status in (InvoiceStatus.STAMPED, InvoiceStatus.CANCELLED):
        return _record(session, slip_id, found)
    if (problem := _why_not(session, stamping, slip)) is not None:
        log.warning("platform CFDI of slip %s not issued: %s", slip_id, problem.state)
        return problem
    issuer = platform_issuer(session)
    branch_id = platform_branch(session, issuer)
    slip = session.get(PaymentSlip, slip_id)
    ticket_id = slip_ticket(session, branch_id, slip, now)
    slip = session.get(PaymentSlip, slip_id)
    emails = admin_emails(session, slip.issuer_id)
    request = issue.Request(
        branch_id=branch_id,
        ticket_ids=[ticket_id],
        receptor=receptor_of(slip.issuer),
        forma_pago=FORMA_PAGO,
        email=emails[0] if emails else None,
        idempotency_key=slip_key(slip_id),
    )
    outcome = stamping.issue(session, request, platform_issuer(session), now)
    if outcome.result is Result.STAMPED and outcome.invoice is not None:
        return _record(session, slip_id, outcome.invoice)
    if outcome.result is Result.UNAVAILABLE:
        return InvoiceOutcome(CfdiState.UNAVAILABLE, reason=outcome.reason)
    if outcome.result is Result.REFUSED:
        invoice_id = outcome.invoice.id if outcome.invoice is not None else None
        return InvoiceOutcome(CfdiState.FAILED, invoice_id, outcome.reason or outcome.code)
    return InvoiceOutcome(
        CfdiState.PENDING, outcome.invoice.id if outcome.invoice else None, outcome.reason
    )


def confirm(
    session: Session,
    stamping: Stamping,
    slip_id: int,
    staff_id: int | None,
    now: datetime,
    *,
    notify: Notify | None = None,
) -> tuple[bool, InvoiceOutcome]:
    """Apply the slip (once) and issue its CFDI: (applied now, the CFDI's outcome). The CFDI
    is tried again on a second confirmation when it is not stamped yet."""
    applied = apply(session, slip_id, staff_id, now, notify=notify)
    return applied, invoice(session, stamping, slip_id, now)


def cfdi_status(session: Session, stamping: Stamping, slip: PaymentSlip) -> InvoiceOutcome:
    """Where a confirmed slip's CFDI stands, without stamping anything."""
    if slip.status is not SlipStatus.CONFIRMED:
        return InvoiceOutcome(CfdiState.TO_DO)
    if slip.invoice_id is not None:
        return InvoiceOutcome(CfdiState.STAMPED, slip.invoice_id)
    found = issue.by_key(session, slip_key(slip.id))
    if found is not None:
        if found.status in (InvoiceStatus.STAMPED, InvoiceStatus.CANCELLED):
            return InvoiceOutcome(CfdiState.STAMPED, found.id)
        return InvoiceOutcome(CfdiState.PENDING, found.id, found.error or "")
    if (problem := _why_not(session, stamping, slip)) is not None:
        return problem
    # Refused: its key is gone, its link to the sale stays (inactive) with the PAC's words.
    issuer = platform_issuer(session)
    refused = session.scalar(
        select(Invoice)
        .join(invoice_ticket, invoice_ticket.c.invoice_id == Invoice.id)
        .join(Ticket, Ticket.id == invoice_ticket.c.ticket_id)
        .join(Branch, Branch.id == Ticket.branch_id)
        .where(
            Branch.issuer_id == issuer.id,
            Branch.code == PLATFORM_BRANCH,
            Ticket.ticket_number == ticket_number(slip),
            Invoice.status == InvoiceStatus.FAILED,
        )
        .order_by(Invoice.updated_at.desc())
        .limit(1)
    )
    if refused is not None:
        return InvoiceOutcome(CfdiState.FAILED, refused.id, refused.error or "")
    return InvoiceOutcome(CfdiState.TO_DO)
