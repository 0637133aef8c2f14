"""The figures behind the desk's charts (issue #17 pt 9): stamps per day, an issuer's stamp
credits at the end of each day (from the ledger), licences to renew per week. The back
office's dashboard (webapp.admin.dashboard) shows one issuer's; the operator console's home
every issuer's (`console_charts`, drawn by templates/operator/_charts.html).

Days are Mexico City's calendar days, as the dashboard's other figures. Each series is one
GROUP BY query over a CASE that numbers the day (or week) of a row: the same SQL on SQLite and
PostgreSQL, without their date functions. No Flask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from webapp import charts
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.models import Invoice, Issuer
from webapp.models.platform import StampMovement

STAMP_DAYS = 30  # stamps per day: the last 30 days, today included
CREDIT_DAYS = 90  # credits over time: the last 90 days
RENEWAL_WEEKS = 13  # renewals due: the next 13 weeks (91 days)
QUOTE_DAYS = 30  # the renewal quote shows this many days before the licence expires


def _start(day: date) -> datetime:
    """The first instant of a local day, in UTC."""
    return datetime.combine(day, time(), MEXICO_CITY).astimezone(UTC)


def _buckets(column, first: date, count: int, days: int = 1):
    """(CASE numbering the bucket of `column`, where it is inside the buckets): `count`
    buckets of `days` local days from `first`."""
    edges = [_start(first + timedelta(days=days * i)) for i in range(count + 1)]
    number = case(*[(column < edges[i + 1], i) for i in range(count - 1)], else_=count - 1)
    return number.label("bucket"), (column >= edges[0]) & (column < edges[-1])


def _per_bucket(session: Session, number, how, column, *where) -> dict[int, int]:
    """{bucket: how(column)} over the rows where `where` holds. Grouped over a subquery:
    PostgreSQL cannot tell that a CASE with bound parameters in SELECT and the same CASE in
    GROUP BY are one expression."""
    rows = select(number, column.label("value")).where(*where).subquery()
    query = select(rows.c.bucket, how(rows.c.value)).group_by(rows.c.bucket)
    return dict(session.execute(query).all())


def _days(now: datetime, count: int) -> list[date]:
    today = now.astimezone(MEXICO_CITY).date()
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def stamps_per_day(
    session: Session,
    now: datetime,
    *,
    issuer_id: int | None = None,
    branch_ids: list[int] | None = None,
    days: int = STAMP_DAYS,
) -> list[charts.Point]:
    """Invoices stamped on each of the last `days` days (today last): one issuer's (those of
    `branch_ids` only, when given) or every issuer's."""
    dates = _days(now, days)
    number, inside = _buckets(Invoice.stamped_at, dates[0], days)
    where = [Invoice.uuid.is_not(None), inside]
    if issuer_id is not None:
        where.append(Invoice.issuer_id == issuer_id)
    if branch_ids is not None:
        where.append(Invoice.branch_id.in_(branch_ids))
    found = _per_bucket(session, number, func.count, Invoice.id, *where)
    return [charts.Point(day, found.get(i, 0)) for i, day in enumerate(dates)]


def credits_per_day(
    session: Session, issuer_id: int, now: datetime, *, days: int = CREDIT_DAYS
) -> list[charts.Point]:
    """The issuer's stamp credits at the end of each of the last `days` days (the balance
    after the day's last movement in the ledger, or the one before it), from the first day
    a balance is known; no movement ever: no points."""
    dates = _days(now, days)
    number, inside = _buckets(StampMovement.created_at, dates[0], days)
    last = _per_bucket(
        session, number, func.max, StampMovement.id, StampMovement.issuer_id == issuer_id, inside
    )
    balances = (
        dict(
            session.execute(
                select(StampMovement.id, StampMovement.balance).where(
                    StampMovement.id.in_(last.values())
                )
            ).all()
        )
        if last
        else {}
    )
    balance = session.scalar(
        select(StampMovement.balance)
        .where(StampMovement.issuer_id == issuer_id, StampMovement.created_at < _start(dates[0]))
        .order_by(StampMovement.id.desc())
        .limit(1)
    )
    points = []
    for i, day in enumerate(dates):
        if i in last:
            balance = balances[last[i]]
        if balance is not None:
            points.append(charts.Point(day, balance))
    return points


def renewals_per_week(
    session: Session, now: datetime, *, weeks: int = RENEWAL_WEEKS
) -> list[charts.Point]:
    """How many issuers' licences expire in each of the next `weeks` weeks (the first starts
    today); the point's key is the week's first day."""
    today = now.astimezone(MEXICO_CITY).date()
    number, inside = _buckets(Issuer.licence_expires_at, today, weeks, days=7)
    found = _per_bucket(session, number, func.count, Issuer.id, inside)
    return [charts.Point(today + timedelta(weeks=i), found.get(i, 0)) for i in range(weeks)]


@dataclass(frozen=True)
class Renewal:
    """An issuer's licence: the local day it expires and the days left (negative: expired)."""

    expires: date
    days: int
    gauge: charts.Gauge


def renewal(issuer: Issuer, now: datetime) -> Renewal | None:
    """The issuer's licence on a scale of a year, marked where the renewal quote starts; None
    when its licence is not checked."""
    if issuer.licence_expires_at is None:
        return None
    expires = issuer.licence_expires_at.astimezone(MEXICO_CITY).date()
    days = (expires - now.astimezone(MEXICO_CITY).date()).days
    return Renewal(expires, days, charts.gauge(days, 365, QUOTE_DAYS))


@dataclass(frozen=True)
class IssuerCharts:
    """The back office's dashboard: its stamps per day, its credits over time (None when the
    issuer is not metered) and its licence (None when not checked)."""

    stamps: charts.Chart
    credits: charts.Chart | None
    renewal: Renewal | None


def issuer_charts(
    session: Session, issuer: Issuer, branch_ids: list[int] | None, now: datetime
) -> IssuerCharts:
    return IssuerCharts(
        stamps=charts.bars(
            stamps_per_day(session, now, issuer_id=issuer.id, branch_ids=branch_ids)
        ),
        credits=(
            None
            if issuer.stamp_credits is None
            else charts.line(credits_per_day(session, issuer.id, now))
        ),
        renewal=renewal(issuer, now),
    )


@dataclass(frozen=True)
class ConsoleCharts:
    """The operator console's home: licences to renew per week, stamps per day, every
    issuer's."""

    renewals: charts.Chart
    stamps: charts.Chart


def console_charts(session: Session, now: datetime) -> ConsoleCharts:
    """What templates/operator/_charts.html draws (pass it as `console_charts`)."""
    return ConsoleCharts(
        renewals=charts.bars(renewals_per_week(session, now)),
        stamps=charts.bars(stamps_per_day(session, now)),
    )
