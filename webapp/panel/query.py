"""The invoice lists: filters, sort and keyset pages (knows nothing of Flask).

Every query is scoped (`Scope`): to one account for the customer's panel, to an issuer (and
a branch) for the back office's list. An account's list walks one of the
`ix_invoice_panel_*` indexes from a row-value cursor, so a page costs a short index range
scan however deep it is: no OFFSET and no COUNT of the whole list (an issuer's list uses
`ix_invoice_issuer_id_fecha_id` / `ix_invoice_branch_id_fecha_id`, unsteered: thousands of
rows at most). Free text can mean a UUID prefix, a folio or an
issuer's name; each reading is its own index scan and the results are merged in order.

A page is found in two steps: the sort keys of the next few pages (`keys`), which also
give the numbered links to the following pages, then the rows of this page by id.

An account also sees the bills of the service accounts whose lines it holds (invoices with
`service_account_id` among `Scope.service_account_ids`, whoever they were issued to). Those
are a second run of each reading, merged in order like the free text's readings, rather than
an OR in the account's query: `account_id = ? OR service_account_id IN (...)` would leave the
`ix_invoice_panel_*` indexes (each led by account_id) for a scan of every listed invoice.
The second run reads `ix_invoice_service_account_id` (every other column hidden from the
planner, on both databases: an issuer's index in fecha order would walk all its bills) and
sorts what it finds: a service account's bills are a dozen a year, few enough to sort at
any depth of the list.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Column, ColumnElement, func, or_, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.visitors import replacement_traverse

from webapp.models import Branch, CancelStatus, Invoice, InvoiceStatus, Issuer

MEXICO_CITY = ZoneInfo("America/Mexico_City")
PAGE_SIZE = 20  # rows a phone shows in a few screens; keeps a page fragment within 3 KB
PAGES_AHEAD = 5  # numbered links offered after the current page
LISTED = (InvoiceStatus.STAMPED, InvoiceStatus.CANCELLED)
SORTS = ("-fecha", "fecha", "-total", "total")
STATES = ("vigente", "cancelada", "archivada", "en_proceso")  # en_proceso: back office only
MAX_ISSUER_MATCHES = 20
WIDE = 2000  # matches from which walking the sort index beats sorting the matches

_UUID_PREFIX = re.compile(r"[0-9A-F]{1,8}(-[0-9A-F]{0,4}){0,3}(-[0-9A-F]{0,12})?")
_FOLIO = re.compile(r"([A-Z]{0,25})[- ]?(\d{1,18})")


@dataclass(frozen=True)
class Filters:
    desde: date | None = None
    hasta: date | None = None
    issuer_id: int | None = None
    branch_id: int | None = None
    estado: str | None = None
    total_min: Decimal | None = None
    total_max: Decimal | None = None
    q: str = ""
    orden: str = "-fecha"
    receptor_rfc: str | None = None  # the back office's filter (customers see their own RFC)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: the sort key and id of the last row before it."""

    value: datetime | Decimal
    id: int

    def encode(self) -> str:
        value = (
            self.value.strftime("%Y%m%d%H%M%S")
            if isinstance(self.value, datetime)
            else str(self.value)
        )
        return f"{value}_{self.id}"

    @classmethod
    def decode(cls, text: str, orden: str) -> Cursor:
        """Raises ValueError on anything but a cursor this module wrote."""
        value, _, ident = text.partition("_")
        if not ident.isdigit() or len(ident) > 18:
            raise ValueError(text)
        if orden.endswith("fecha"):
            return cls(datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=UTC), int(ident))
        if not re.fullmatch(r"-?\d{1,12}(\.\d{1,2})?", value):
            raise ValueError(text)
        return cls(Decimal(value), int(ident))


@dataclass
class Row:
    invoice: Invoice
    issuer: Issuer
    branch: Branch


@dataclass
class Page:
    rows: list[Row]
    next: Cursor | None  # the start of the page after this one
    ahead: list[Cursor] = field(default_factory=list)  # starts of the following pages
    more_than: int | None = None  # at least this many rows from here on (None: exact)
    remaining: int = 0  # rows from this page's start on, as far as looked


def visible(account_id: int, service_account_ids: Sequence[int] = ()) -> list[ColumnElement[bool]]:
    """What an account may see: its own invoices, stamped or cancelled, and those of the
    service accounts whose lines it holds (for one invoice by id: no list walks this OR)."""
    owner = Invoice.account_id == account_id
    if service_account_ids:
        owner = or_(owner, Invoice.service_account_id.in_(list(service_account_ids)))
    return [owner, Invoice.status.in_(LISTED)]


@dataclass(frozen=True)
class Scope:
    """Whose invoices a list shows: an account's (the customer's panel, whose indexes are led
    by account_id, and the bills of the service accounts it holds lines of) or an issuer's,
    optionally only some branches (the back office)."""

    where: tuple[ColumnElement[bool], ...]
    account_id: int | None = None
    issuer_id: int | None = None
    branch_ids: tuple[int, ...] | None = None
    service_account_ids: tuple[int, ...] = ()

    @classmethod
    def account(cls, account_id: int, service_account_ids: Sequence[int] = ()) -> Scope:
        return cls(
            tuple(visible(account_id)),
            account_id=account_id,
            service_account_ids=tuple(service_account_ids),
        )

    @property
    def bills_where(self) -> tuple[ColumnElement[bool], ...] | None:
        """The second run's scope: the held service accounts' bills (None: none held)."""
        if not self.service_account_ids:
            return None
        return (
            Invoice.service_account_id.in_(list(self.service_account_ids)),
            Invoice.status.in_(LISTED),
        )

    @classmethod
    def issuer(cls, issuer_id: int, branch_ids: Sequence[int] | None = None) -> Scope:
        where = [Invoice.issuer_id == issuer_id, Invoice.status.in_(LISTED)]
        if branch_ids is not None:
            where.append(Invoice.branch_id.in_(list(branch_ids)))
        ids = tuple(branch_ids) if branch_ids is not None else None
        return cls(tuple(where), issuer_id=issuer_id, branch_ids=ids)

    def admits(self, invoice: Invoice) -> bool:
        """Whether a row loaded by id belongs to this scope."""
        if invoice.status not in LISTED:
            return False
        if self.account_id is not None:
            return (
                invoice.account_id == self.account_id
                or invoice.service_account_id in self.service_account_ids
            )
        return invoice.issuer_id == self.issuer_id and (
            self.branch_ids is None or invoice.branch_id in self.branch_ids
        )


def scope_of(owner: Scope | int) -> Scope:
    """A Scope, given one or an account id (the customer's panel)."""
    return owner if isinstance(owner, Scope) else Scope.account(owner)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), MEXICO_CITY).astimezone(UTC)


def _conditions(f: Filters) -> list[ColumnElement[bool]]:
    where = []
    if f.desde:
        where.append(Invoice.fecha >= _local_midnight(f.desde))
    if f.hasta:
        where.append(Invoice.fecha < _local_midnight(f.hasta + timedelta(days=1)))
    if f.issuer_id is not None:
        where.append(Invoice.issuer_id == f.issuer_id)
    if f.branch_id is not None:
        where.append(Invoice.branch_id == f.branch_id)
    if f.estado == "vigente":
        where += [Invoice.status == InvoiceStatus.STAMPED, Invoice.archived.is_(False)]
    elif f.estado == "cancelada":
        where.append(Invoice.status == InvoiceStatus.CANCELLED)
    elif f.estado == "archivada":
        where += [Invoice.status == InvoiceStatus.STAMPED, Invoice.archived.is_(True)]
    elif f.estado == "en_proceso":  # a cancellation waiting for the receptor
        where += [
            Invoice.status == InvoiceStatus.STAMPED,
            Invoice.cancel_status == CancelStatus.PENDING,
        ]
    if f.total_min is not None:
        where.append(Invoice.total >= f.total_min)
    if f.total_max is not None:
        where.append(Invoice.total <= f.total_max)
    if f.receptor_rfc:
        where.append(Invoice.receptor_rfc == f.receptor_rfc)
    return where


def _text_readings(session: Session, q: str) -> list[list[ColumnElement[bool]]]:
    """The ways free text can match: UUID prefix, serie-folio, issuer name or RFC."""
    text = q.strip().upper()
    if not text:
        return [[]]
    readings: list[list[ColumnElement[bool]]] = []
    if _UUID_PREFIX.fullmatch(text):
        readings.append(_uuid_prefix(text.rstrip("-")))
    if match := _FOLIO.fullmatch(text):
        serie, folio = match.groups()
        reading = [Invoice.folio == int(folio)]
        if serie:
            reading.append(Invoice.serie == serie)
        readings.append(reading)
    if len(text) < 3:
        return readings or [[Invoice.id.is_(None)]]
    like = f"%{text.lower().replace('%', '').replace('_', '')}%"
    issuers = session.scalars(
        select(Issuer.id)
        .where((func.lower(Issuer.legal_name).like(like)) | (Issuer.rfc == text))
        .order_by(Issuer.id)
        .limit(MAX_ISSUER_MATCHES)
    ).all()
    readings += [[Invoice.issuer_id == issuer_id] for issuer_id in issuers]
    return readings


def _uuid_prefix(prefix: str) -> list[ColumnElement[bool]]:
    """A range the index can walk (LIKE cannot use it under every collation) and LIKE to be
    exact. Every UUID has its dashes in the same places, so the range holds even under
    collations that skip punctuation."""
    last = prefix[-1]
    upper = prefix[:-1] + ("A" if last == "9" else chr(ord(last) + 1))
    return [Invoice.uuid >= prefix, Invoice.uuid < upper, Invoice.uuid.like(prefix + "%")]


def _sort(orden: str):
    column = Invoice.fecha if orden.endswith("fecha") else Invoice.total
    return column, orden.startswith("-")


def _key_query(base, orden: str, after: Cursor | None, limit: int):
    column, descending = _sort(orden)
    query = select(column, Invoice.id).where(*base)
    if after is not None:
        key, bound = tuple_(column, Invoice.id), (after.value, after.id)
        query = query.where(key < bound if descending else key > bound)
    order = (column.desc(), Invoice.id.desc()) if descending else (column, Invoice.id)
    return query.order_by(*order).limit(limit)


# Indexes already in fecha order once their leading columns are fixed by equalities.
_FECHA_ORDERED = (("status", "archived"), ("issuer_id",), ("branch_id",))


def _equalities(conditions: list[ColumnElement[bool]]) -> set[str]:
    return {
        c.left.name
        for c in conditions
        if isinstance(c, BinaryExpression)
        and c.operator in (operators.eq, operators.is_)
        and isinstance(c.left, Column)
    }


def _walk(conditions: list[ColumnElement[bool]], keep: set[str]) -> list[ColumnElement[bool]]:
    """The same conditions with every invoice column but `keep` hidden from the planner
    (wrapped in a no-op), so that it walks the index of `keep` and stops after a page
    instead of gathering every match by another index and sorting them."""

    def hide(element):
        if (
            isinstance(element, Column)
            and element.table is Invoice.__table__
            and element.name not in keep
        ):
            return func.coalesce(element, element)
        return None

    return [replacement_traverse(c, {}, hide) for c in conditions]


def _steer(session, account_id, conditions, found, orden):
    """SQLite's planner, without the statistics to tell a page from a sort of many rows,
    is told which index to walk; PostgreSQL's chooses well from its own statistics.
    (Only the account's lists are steered: an issuer's list is thousands of rows at most.)"""
    if not found or account_id is None or session.get_bind().dialect.name != "sqlite":
        return conditions
    column = _sort(orden)[0].name
    fixed = _equalities(found)
    ordered = next((cols for cols in _FECHA_ORDERED if set(cols) <= fixed), None)
    if column == "fecha" and ordered:
        return _walk(conditions, {"account_id", "fecha", *ordered})
    if _is_wide(session, account_id, found):
        return _walk(conditions, {"account_id", column})
    return conditions


def _is_wide(session: Session, account_id: int, conditions: list[ColumnElement[bool]]) -> bool:
    """Whether about WIDE rows match or more (counted no further, by the best filter index;
    drafts and failures are counted too, which an estimate can afford)."""
    found = (
        select(Invoice.id).where(Invoice.account_id == account_id, *conditions).limit(WIDE)
    ).subquery()
    return session.scalar(select(func.count()).select_from(found)) >= WIDE


def keys(
    session: Session,
    owner: Scope | int,
    f: Filters,
    after: Cursor | None,
    limit: int,
) -> list[Cursor]:
    """The sort keys of up to `limit` rows after `after`, in order, over every reading.

    A filter matching few rows is served by its own index (then sorted: few rows); one
    matching many, by walking an index in sort order, where a page's matches come soon.
    """
    scope = scope_of(owner)
    filters = _conditions(f)
    runs = []
    for reading in _text_readings(session, f.q):
        found = filters + reading
        conditions = _steer(session, scope.account_id, [*scope.where, *found], found, f.orden)
        query = _key_query(conditions, f.orden, after, limit)
        runs.append([Cursor(value, ident) for value, ident in session.execute(query)])
        if scope.bills_where is not None:  # the held service accounts' bills: few, sorted
            bills = _walk([*scope.bills_where, *found], {"service_account_id"})
            query = _key_query(bills, f.orden, after, limit)
            runs.append([Cursor(value, ident) for value, ident in session.execute(query)])
    if len(runs) == 1:
        return runs[0]
    _, descending = _sort(f.orden)
    merged = heapq.merge(*runs, key=lambda c: (c.value, c.id), reverse=descending)
    out: list[Cursor] = []
    seen: set[int] = set()
    for cursor in merged:
        if cursor.id not in seen:
            seen.add(cursor.id)
            out.append(cursor)
            if len(out) == limit:
                break
    return out


def rows_by_id(session: Session, owner: Scope | int, ids: Sequence[int]) -> list[Row]:
    """The rows of `ids` (of this scope only), in the order given."""
    scope = scope_of(owner)
    if not ids:
        return []
    # By primary key alone (a planner could prefer walking the account's index), with the
    # scope checked on each row.
    found = {
        invoice.id: Row(invoice, issuer, branch)
        for invoice, issuer, branch in session.execute(
            select(Invoice, Issuer, Branch)
            .join(Issuer, Issuer.id == Invoice.issuer_id)
            .join(Branch, Branch.id == Invoice.branch_id)
            .where(Invoice.id.in_(ids))
        )
        if scope.admits(invoice)
    }
    return [found[i] for i in ids if i in found]


def page(
    session: Session,
    owner: Scope | int,
    f: Filters,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the list, with the starts of the next pages and how many rows follow."""
    looked = size * (PAGES_AHEAD + 1)
    found = keys(session, owner, f, after, looked + 1)
    current = found[:size]
    ahead = [found[i - 1] for i in range(size, min(len(found), looked), size)]
    return Page(
        rows=rows_by_id(session, owner, [c.id for c in current]),
        next=current[-1] if len(found) > size else None,
        ahead=ahead,
        more_than=looked if len(found) > looked else None,
        remaining=min(len(found), looked),
    )


def all_rows(
    session: Session, owner: Scope | int, f: Filters, batch: int = 500, limit: int | None = None
) -> Iterator[Row]:
    """Every row of the filtered list in order, fetched a batch at a time (for exports)."""
    after, given = None, 0
    while True:
        want = batch if limit is None else min(batch, limit - given)
        if want <= 0:
            return
        found = keys(session, owner, f, after, want)
        yield from rows_by_id(session, owner, [c.id for c in found])
        given += len(found)
        if len(found) < want:
            return
        after = found[-1]


def count_up_to(session: Session, owner: Scope | int, f: Filters, cap: int) -> int:
    """How many rows the filters give, counting no further than `cap`."""
    return len(keys(session, owner, f, None, cap))


def used_issuers(
    session: Session, account_id: int, service_account_ids: Sequence[int] = ()
) -> list[Issuer]:
    """The issuers of the account's invoices: one index probe per issuer (a loose scan),
    and those of the held service accounts' bills."""
    found = _loose(session, account_id, Invoice.issuer_id, Issuer)
    return _with_bills(session, found, service_account_ids, Invoice.issuer_id, Issuer)


def used_branches(
    session: Session, account_id: int, service_account_ids: Sequence[int] = ()
) -> list[Branch]:
    found = _loose(session, account_id, Invoice.branch_id, Branch)
    return _with_bills(session, found, service_account_ids, Invoice.branch_id, Branch)


def _with_bills(session: Session, found: list, service_account_ids, column, model) -> list:
    """`found` and the `model` rows of the held service accounts' bills, by id: those bills
    are one issuer's billing branch each, read through ix_invoice_service_account_id."""
    if not service_account_ids:
        return found
    known = {row.id for row in found}
    extra = [
        i
        for i in session.scalars(
            select(column)
            .where(Invoice.service_account_id.in_(list(service_account_ids)))
            .distinct()
        )
        if i not in known
    ]
    if not extra:
        return found
    added = session.scalars(select(model).where(model.id.in_(extra))).all()
    return sorted([*found, *added], key=lambda row: row.id)


def _loose(session: Session, account_id: int, column, model) -> list:
    """The distinct values of `column` among the account's invoices, by a recursive query
    that jumps from one value to the next through the index (a loose index scan), never
    reading the account's rows one by one."""
    mine = Invoice.account_id == account_id
    values = select(func.min(column).label("v")).where(mine).cte("loose", recursive=True)
    values = values.union_all(
        select(select(func.min(column)).where(mine, column > values.c.v).scalar_subquery()).where(
            values.c.v.is_not(None)
        )
    )
    return list(
        session.scalars(select(model).join(values, model.id == values.c.v).order_by(model.id))
    )
