"""Check a ticket as the customer typed it against what the point of sale recorded."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from webapp.fiscal.window import in_window, parse_policy
from webapp.issuing.issue import release_abandoned
from webapp.models import Branch, Ticket, TicketStatus


class TicketProblem(enum.StrEnum):
    NOT_FOUND = "not_found"  # no such ticket number at this branch
    ORDER_MISMATCH = "order_mismatch"
    TOTAL_MISMATCH = "total_mismatch"
    ALREADY_INVOICED = "already_invoiced"
    OUT_OF_WINDOW = "out_of_window"
    IN_GLOBAL = "in_global"  # in a factura global and the issuer refuses to reissue
    CANCELLED = "cancelled"
    REPEATED = "repeated"  # already added to the invoice being prepared


@dataclass
class TicketCheck:
    """The outcome: the ticket when it was found, and a problem per form field.

    Fields: "ticket_number", "order_number", "total". Problems about the ticket's state
    (invoiced, window, global, cancelled) are told only once the order number and total
    match: they are for the holder of the ticket, not for someone guessing numbers.
    """

    ticket: Ticket | None = None
    problems: dict[str, TicketProblem] = field(default_factory=dict)
    in_global: bool = False  # invoiceable, but a factura global must be corrected

    @property
    def ok(self) -> bool:
        return self.ticket is not None and not self.problems


# Built once: building a statement and its cache key costs more than running it on SQLite.
TICKET_QUERY = select(Ticket).where(
    Ticket.branch_id == bindparam("branch_id"), Ticket.ticket_number == bindparam("number")
)


def check_ticket(
    session: Session,
    branch: Branch,
    *,
    ticket_number: str,
    order_number: str | None,
    total: Decimal | None,
    now: datetime,
    already_added: frozenset[int] = frozenset(),
) -> TicketCheck:
    """Check one ticket; `order_number`/`total` None means not typed yet (no verdict on them)."""
    ticket = session.scalar(TICKET_QUERY, {"branch_id": branch.id, "number": ticket_number})
    if ticket is None:
        return TicketCheck(problems={"ticket_number": TicketProblem.NOT_FOUND})
    check = TicketCheck(ticket=ticket)
    if order_number is not None and order_number != ticket.order_number:
        check.problems["order_number"] = TicketProblem.ORDER_MISMATCH
    if total is not None and total != ticket.total:
        check.problems["total"] = TicketProblem.TOTAL_MISMATCH
    if check.problems or order_number is None or total is None:
        return check
    if ticket.status is TicketStatus.INVOICED and release_abandoned(session, ticket.id, now):
        session.refresh(ticket)  # its invoice was left half-made by a process that died
    state = _state_problem(ticket, branch, now, already_added)
    if state is TicketProblem.IN_GLOBAL and branch.issuer.global_policy == "flag":
        check.in_global = True
    elif state is not None:
        check.problems["ticket_number"] = state
    return check


def _state_problem(
    ticket: Ticket, branch: Branch, now: datetime, already_added: frozenset[int]
) -> TicketProblem | None:
    if ticket.id in already_added:
        return TicketProblem.REPEATED
    if ticket.status is TicketStatus.INVOICED:
        return TicketProblem.ALREADY_INVOICED
    if ticket.status is TicketStatus.CANCELLED:
        return TicketProblem.CANCELLED
    if not in_window(ticket.sold_at, now, parse_policy(branch.issuer.window_policy)):
        return TicketProblem.OUT_OF_WINDOW
    if ticket.status is TicketStatus.IN_GLOBAL:
        return TicketProblem.IN_GLOBAL
    return None
