"""The dashboard's figures: invoices stamped today and this month, open tickets, failures,
the PAC, the stamps used and the invoices in each state (those stuck on the way to the PAC
apart), and the charts: stamps per day, the stamp credits over time, the licence's days left
(webapp.platform.figures). Plain queries on the scoped tables (no Flask)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.models import Branch, Invoice, InvoiceStatus, Issuer, Ticket, TicketStatus
from webapp.platform.figures import IssuerCharts, issuer_charts

# An invoice still in one of these states this long after its last change is stuck: the
# process that took it there died; `flask invoices reconcile` finishes or releases it.
ON_THE_WAY = (InvoiceStatus.DRAFT, InvoiceStatus.SIGNED, InvoiceStatus.STAMPING)
STUCK_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class StateCount:
    status: InvoiceStatus
    count: int
    stuck: int  # of `count`, those ON_THE_WAY for longer than STUCK_AFTER


@dataclass(frozen=True)
class Figures:
    stamped_today: int
    stamped_month: int
    stamps_used: int  # every stamp the issuer has used (individual and global invoices)
    open_tickets: int
    failed: int
    needs_correction: int
    pending_cancellations: int
    last_failure: Invoice | None
    states: list[StateCount]  # every InvoiceStatus, in the state machine's order
    charts: IssuerCharts

    @property
    def stuck(self) -> int:
        return sum(state.stuck for state in self.states)


def figures(
    session: Session, issuer: Issuer, branch_ids: list[int] | None, now: datetime
) -> Figures:
    local = now.astimezone(MEXICO_CITY)
    day = datetime.combine(local.date(), time(), MEXICO_CITY).astimezone(UTC)
    month = datetime.combine(local.date().replace(day=1), time(), MEXICO_CITY).astimezone(UTC)

    def invoices(*where) -> int:
        query = select(func.count()).select_from(Invoice).where(Invoice.issuer_id == issuer.id)
        if branch_ids is not None:
            query = query.where(Invoice.branch_id.in_(branch_ids))
        return session.scalar(query.where(*where)) or 0

    stamped = Invoice.uuid.is_not(None)
    tickets = (
        select(func.count())
        .select_from(Ticket)
        .join(Branch)
        .where(Branch.issuer_id == issuer.id, Ticket.status == TicketStatus.OPEN)
    )
    if branch_ids is not None:
        tickets = tickets.where(Ticket.branch_id.in_(branch_ids))
    failure = select(Invoice).where(
        Invoice.issuer_id == issuer.id, Invoice.status == InvoiceStatus.FAILED
    )
    if branch_ids is not None:
        failure = failure.where(Invoice.branch_id.in_(branch_ids))
    return Figures(
        stamped_today=invoices(stamped, Invoice.stamped_at >= day),
        stamped_month=invoices(stamped, Invoice.stamped_at >= month),
        stamps_used=invoices(stamped),
        open_tickets=session.scalar(tickets) or 0,
        failed=invoices(Invoice.status == InvoiceStatus.FAILED),
        needs_correction=invoices(Invoice.needs_correction.is_(True)),
        pending_cancellations=invoices(Invoice.cancel_status == "pending"),
        last_failure=session.scalars(failure.order_by(Invoice.updated_at.desc()).limit(1)).first(),
        states=states(session, issuer, branch_ids, now),
        charts=issuer_charts(session, issuer, branch_ids, now),
    )


def states(
    session: Session, issuer: Issuer, branch_ids: list[int] | None, now: datetime
) -> list[StateCount]:
    """Invoices per state, and how many of them are stuck: one GROUP BY query."""
    stuck = and_(Invoice.status.in_(ON_THE_WAY), Invoice.updated_at < now - STUCK_AFTER)
    query = (
        select(Invoice.status, func.count(), func.count(case((stuck, 1))))
        .where(Invoice.issuer_id == issuer.id)
        .group_by(Invoice.status)
    )
    if branch_ids is not None:
        query = query.where(Invoice.branch_id.in_(branch_ids))
    found = {status: (count, late) for status, count, late in session.execute(query)}
    return [StateCount(status, *found.get(status, (0, 0))) for status in InvoiceStatus]
