"""Store a validated ticket with its lines, idempotent on branch + ticket number.

The same ticket pushed twice with the same content is "existing" (nothing changes); with other
content it is a "conflict" (the stored one stays: a ticket is what was sold). Each ticket goes in
its own SAVEPOINT, so a batch never leaves half of one ticket behind, and two pushes racing for
one ticket end with one row: the unique constraint (branch_id, ticket_number) refuses the second,
which then compares with the winner.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from webapp.i18n_marker import N_
from webapp.models import Branch, Ticket, TicketLine
from webapp.tickets.validate import FieldError, TicketData, line_fingerprint

CONFLICT = N_(
    "El ticket %(number)s de la sucursal %(branch)s ya existe con otro contenido; "
    "un ticket registrado no se modifica."
)


class Outcome(enum.StrEnum):
    CREATED = "created"
    EXISTING = "existing"  # the same ticket, already stored: nothing done
    CONFLICT = "conflict"  # the same branch + number with other content: refused


@dataclass
class Result:
    outcome: Outcome
    ticket: Ticket
    errors: list[FieldError] = field(default_factory=list)


def branch_finder(session: Session, issuer_id: int) -> Callable[[str], Branch | None]:
    """find(code) → the issuer's branch with that code (exact, then upper-cased), or None."""
    cache: dict[str, Branch | None] = {}

    def find(code: str) -> Branch | None:
        if code not in cache:
            found = None
            for candidate in dict.fromkeys((code, code.upper())):
                found = session.scalar(
                    select(Branch).where(Branch.issuer_id == issuer_id, Branch.code == candidate)
                )
                if found is not None:
                    break
            cache[code] = found
        return cache[code]

    return find


def find_ticket(session: Session, branch_id: int, ticket_number: str) -> Ticket | None:
    return session.scalar(
        select(Ticket)
        .where(Ticket.branch_id == branch_id, Ticket.ticket_number == ticket_number)
        .options(selectinload(Ticket.lines))
    )


def stored_fingerprint(ticket: Ticket) -> tuple:
    return (
        ticket.order_number,
        ticket.sold_at.replace(microsecond=0),
        ticket.total,
        ticket.currency,
        ticket.forma_pago,
        tuple(line_fingerprint(line) for line in ticket.lines),
    )


def _compare(ticket: Ticket, data: TicketData, prefix: str) -> Result:
    if stored_fingerprint(ticket) == data.fingerprint():
        return Result(Outcome.EXISTING, ticket)
    where = f"{prefix}.ticket_number" if prefix else "ticket_number"
    params = {"number": data.ticket_number, "branch": data.branch.code}
    return Result(Outcome.CONFLICT, ticket, [FieldError(where, CONFLICT, params)])


def ingest_ticket(session: Session, data: TicketData, *, prefix: str = "") -> Result:
    """Insert `data` (in a savepoint of the caller's transaction) or report the stored one."""
    existing = find_ticket(session, data.branch.id, data.ticket_number)
    if existing is not None:
        return _compare(existing, data, prefix)
    ticket = Ticket(
        branch_id=data.branch.id,
        ticket_number=data.ticket_number,
        order_number=data.order_number,
        sold_at=data.sold_at.replace(microsecond=0),
        total=data.total,
        currency=data.currency,
        forma_pago=data.forma_pago,
        lines=[
            TicketLine(
                position=position,
                description=line.description,
                clave_prod_serv=line.clave_prod_serv,
                clave_unidad=line.clave_unidad,
                quantity=line.quantity,
                unit_price=line.unit_price,
                objeto_imp=line.objeto_imp,
                tax_factor=line.tax_factor,
                tax_rate=line.tax_rate,
            )
            for position, line in enumerate(data.lines, start=1)
        ],
    )
    try:
        with session.begin_nested():
            session.add(ticket)
    except IntegrityError:  # pushed by someone else between the look-up and the insert
        existing = find_ticket(session, data.branch.id, data.ticket_number)
        if existing is None:
            raise
        return _compare(existing, data, prefix)
    return Result(Outcome.CREATED, ticket)


def _amount(value) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def ticket_json(ticket: Ticket) -> dict:
    """The API's representation of a stored ticket."""
    return {
        "branch": ticket.branch.code,
        "ticket_number": ticket.ticket_number,
        "order_number": ticket.order_number,
        "sold_at": ticket.sold_at.isoformat(),
        "total": f"{ticket.total:.2f}",
        "currency": ticket.currency,
        "forma_pago": ticket.forma_pago,
        "status": str(ticket.status.value),
        "created_at": ticket.created_at.isoformat(),
        "lines": [
            {
                "description": line.description,
                "clave_prod_serv": line.clave_prod_serv,
                "clave_unidad": line.clave_unidad,
                "quantity": _amount(line.quantity),
                "unit_price": _amount(line.unit_price),
                "objeto_imp": line.objeto_imp,
                "tax_factor": line.tax_factor,
                "tax_rate": None if line.tax_rate is None else f"{line.tax_rate:.6f}",
            }
            for line in ticket.lines
        ],
    }
