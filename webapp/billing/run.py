"""The billing run: one bill per active service account of a services issuer and period.

    state = run(session, stamping, issuer, "2026-11", now, progress=callback)

Dates. `ServiceAccount.billing_day` is the corte: the last day of the account's billing
cycle. The bill of period YYYY-MM has cut_date YYYY-MM-<billing_day> and covers the days after
the previous month's corte up to it (period 2026-11, billing_day 8: 2026-10-09 to 2026-11-08);
due_date is the corte plus DUE_DAYS. An account is billed once its corte is over (Mexico City):
a past month bills every account, the current month only those whose corte has passed (the
others wait for a later run: `RunState.waiting`), a later month is refused.

A bill. Its sale is a Ticket of the issuer's billing branch (code BILLING_BRANCH, created when
missing): order_number the account's number, ticket_number "<period>-<account number>",
sold_at the end of the corte day (so the corte's month's factura global takes a receipt's
ticket), one TicketLine per active line with a plan (the plan's monthly fee) and one per
unbilled Charge of the period or an earlier one (a charge that arrived after its period's
bill goes on the next). The statement: previous_balance (the previous bill's balance_due, or
0), charges_total (the ticket's total with tax), payments_total (payments received after the
previous bill's corte, or since the cycle began, up to the end of this corte) and balance_due.
Its fiscal document (invoice or receipt) comes from webapp.billing.documents.

Crash safety. Each batch of accounts is one transaction (SQLite: under the write lock), each
account in a savepoint: a bill, its ticket, its lines and its charges' bill_id are written
together or not at all, so a SIGKILL at any moment leaves every account with its whole bill
or none. The database refuses a second bill of an account and period (and a second ticket
number in the branch): a process that loses that race rolls back its savepoint and moves on,
so two runs at once double nothing. Invoices are stamped after the batch's commit, each
under its bill's idempotency key: a rerun first finishes the bills whose document is still
to be issued (`BillDocument.unfinished`: never tried, refused, left on its way), then bills
the accounts that have no bill. Memory stays flat: account ids are read a batch at a time
(keyset), and the session is emptied after every batch.

Progress lives in the BillingRun row (one per issuer and period): total, done, failed,
heartbeat_at (renewed at least every HEARTBEAT_EVERY while the run lives) and finished_at.
"""

from __future__ import annotations

import logging
import re
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from webapp.billing.documents import BillDocument, Issued, UnsupportedCountry, document_for
from webapp.cfdi.amounts import ZERO
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.db import lock_for_write
from webapp.issuing.branches import ensure_branch
from webapp.models import (
    AccountStatus,
    BillingRun,
    BillKind,
    Charge,
    Issuer,
    Payment,
    Plan,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
    TicketLine,
    TicketStatus,
    utcnow,
)
from webapp.services.stamping import Stamping

log = logging.getLogger(__name__)

BILLING_BRANCH = "FACTURACION"
BILLING_BRANCH_NAME = "Facturación de servicios"
BATCH_SIZE = 100
DUE_DAYS = 15
STALE_AFTER = timedelta(seconds=120)
"""A run whose heartbeat is older than this is no longer running (its process died)."""
HEARTBEAT_EVERY = 10.0  # seconds
_PERIOD = re.compile(r"(\d{4})-(\d{2})")


class BillingError(Exception):
    """The run cannot start: `code` is "not_services", "bad_period", "future_period" or
    "unsupported_country"."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


# --- Periods and dates ---------------------------------------------------------------------


def parse_period(text: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM"; BillingError("bad_period") for anything else."""
    match = _PERIOD.fullmatch((text or "").strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise BillingError("bad_period", text)
    return int(match.group(1)), int(match.group(2))


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_period(period: str) -> str:
    year, month = parse_period(period)
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def local_today(now: datetime) -> date:
    return now.astimezone(MEXICO_CITY).date()


def _last_day(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def cut_date(period: str, billing_day: int) -> date:
    """The corte of `period` for an account closing on `billing_day`."""
    year, month = parse_period(period)
    return date(year, month, min(max(billing_day, 1), _last_day(year, month)))


def cycle_start(period: str, billing_day: int) -> date:
    """The first day of the cycle: the day after the previous month's corte."""
    return cut_date(previous_period(period), billing_day) + timedelta(days=1)


def due_date(cut: date) -> date:
    return cut + timedelta(days=DUE_DAYS)


def day_end(day: date) -> datetime:
    """The instant `day` ends in Mexico City (exclusive), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(), MEXICO_CITY).astimezone(UTC)


def sold_at(cut: date) -> datetime:
    """The bill's sale: the last second of its corte, Mexico City."""
    return day_end(cut) - timedelta(seconds=1)


def last_cut_day(period: str, now: datetime) -> int:
    """The greatest billing_day whose corte of `period` is over at `now` (0: none yet);
    BillingError("future_period") for a month after the current one."""
    year, month = parse_period(period)
    today = local_today(now)
    if (year, month) > (today.year, today.month):
        raise BillingError("future_period", period)
    if (year, month) < (today.year, today.month):
        return 31
    return today.day - 1


def check(issuer: Issuer, period: str, now: datetime) -> None:
    """BillingError unless `issuer` may bill `period` now."""
    if issuer.kind != "services":
        raise BillingError("not_services", issuer.slug)
    last_cut_day(period, now)


# --- The run's row and progress --------------------------------------------------------------


@dataclass(frozen=True)
class RunState:
    run_id: int
    period: str
    total: int  # accounts to bill (billed ones included)
    done: int  # accounts with their bill
    failed: int  # bills whose invoice is not stamped nor on its way (a rerun tries again)
    waiting: int  # accounts whose corte of the period has not come yet
    finished: bool
    error: str | None = None

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)


def is_running(billing_run: BillingRun, now: datetime | None = None) -> bool:
    """A run is running while its heartbeat is fresh and it has not finished."""
    now = now or utcnow()
    return (
        billing_run.finished_at is None
        and billing_run.heartbeat_at is not None
        and billing_run.heartbeat_at >= now - STALE_AFTER
    )


def find_run(session: Session, issuer_id: int, period: str) -> BillingRun | None:
    return session.scalar(
        select(BillingRun).where(BillingRun.issuer_id == issuer_id, BillingRun.period == period)
    )


def start_run(session: Session, issuer_id: int, period: str) -> int:
    """The id of the issuer's run of `period` (created when missing), marked as running now;
    commits."""
    found = find_run(session, issuer_id, period)
    if found is None:
        try:
            session.add(BillingRun(issuer_id=issuer_id, period=period, heartbeat_at=utcnow()))
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        found = find_run(session, issuer_id, period)
    assert found is not None
    run_id = found.id
    session.execute(
        update(BillingRun)
        .where(BillingRun.id == run_id)
        .values(heartbeat_at=utcnow(), finished_at=None, error=None)
    )
    session.commit()
    return run_id


def billing_branch(session: Session, issuer: Issuer) -> int:
    """The id of the issuer's billing branch, created when missing; commits."""
    return ensure_branch(session, issuer, BILLING_BRANCH, BILLING_BRANCH_NAME)


# --- What a bill holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    name: str
    fee: Decimal
    tax_rate: Decimal | None
    clave_prod_serv: str
    clave_unidad: str


def _plans(session: Session, issuer_id: int) -> dict[int, _Plan]:
    return {
        plan.id: _Plan(
            plan.name, plan.monthly_fee, plan.tax_rate, plan.clave_prod_serv, plan.clave_unidad
        )
        for plan in session.scalars(select(Plan).where(Plan.issuer_id == issuer_id))
    }


def line_label(number: str) -> str:
    """A line's number as printed: "+52 55 8000 0001" for a Mexican mobile, else as is."""
    if re.fullmatch(r"\+52\d{10}", number):
        return f"+52 {number[3:5]} {number[5:9]} {number[9:]}"
    return number


def _tax(rate: Decimal | None) -> dict:
    if rate is None:
        return {"objeto_imp": "02", "tax_factor": "Exento", "tax_rate": None}
    return {"objeto_imp": "02", "tax_factor": "Tasa", "tax_rate": rate}


def _billable_lines(account_id):
    return select(ServiceLine.id).where(
        ServiceLine.service_account_id == account_id,
        ServiceLine.status == AccountStatus.ACTIVE,
        ServiceLine.plan_id.is_not(None),
    )


def _unbilled_charges(account_id, period: str):
    return select(Charge.id).where(
        Charge.service_account_id == account_id,
        Charge.period <= period,
        Charge.bill_id.is_(None),
    )


def _to_bill(issuer_id: int, period: str, max_day: int):
    """select(ServiceAccount.id) of the accounts to bill: active, corte over, no bill of the
    period yet, something to bill (a line with a plan or a charge)."""
    billed = exists().where(
        ServiceBill.service_account_id == ServiceAccount.id, ServiceBill.period == period
    )
    return select(ServiceAccount.id).where(
        ServiceAccount.issuer_id == issuer_id,
        ServiceAccount.status == AccountStatus.ACTIVE,
        ServiceAccount.billing_day <= max_day,
        ~billed,
        _billable_lines(ServiceAccount.id).exists()
        | _unbilled_charges(ServiceAccount.id, period).exists(),
    )


@dataclass(frozen=True)
class _Previous:
    cut_date: date
    balance_due: Decimal


def _previous_bills(session: Session, ids: list[int], period: str) -> dict[int, _Previous]:
    latest = (
        select(ServiceBill.service_account_id, func.max(ServiceBill.period).label("period"))
        .where(ServiceBill.service_account_id.in_(ids), ServiceBill.period < period)
        .group_by(ServiceBill.service_account_id)
        .subquery()
    )
    rows = session.execute(
        select(ServiceBill.service_account_id, ServiceBill.cut_date, ServiceBill.balance_due).join(
            latest,
            and_(
                ServiceBill.service_account_id == latest.c.service_account_id,
                ServiceBill.period == latest.c.period,
            ),
        )
    )
    return {account_id: _Previous(cut, Decimal(balance)) for account_id, cut, balance in rows}


def _payments(
    session: Session, ids: list[int], since: datetime, until: datetime
) -> dict[int, list[tuple[datetime, Decimal, str | None]]]:
    found: dict[int, list] = {}
    rows = session.execute(
        select(Payment.service_account_id, Payment.received_at, Payment.amount, Payment.forma_pago)
        .where(
            Payment.service_account_id.in_(ids),
            Payment.received_at >= since,
            Payment.received_at < until,
        )
        .order_by(Payment.received_at, Payment.id)
    )
    for account_id, received_at, amount, forma in rows:
        found.setdefault(account_id, []).append((received_at, Decimal(amount), forma))
    return found


def _charges(session: Session, ids: list[int], period: str) -> dict[int, list[Charge]]:
    found: dict[int, list[Charge]] = {}
    query = (
        select(Charge)
        .where(
            Charge.service_account_id.in_(ids),
            Charge.period <= period,
            Charge.bill_id.is_(None),
        )
        .order_by(Charge.period, Charge.id)
    )
    for charge in session.scalars(query):
        found.setdefault(charge.service_account_id, []).append(charge)
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bill_batch(
    session: Session,
    document: BillDocument,
    issuer_id: int,
    branch_id: int,
    plans: dict[int, _Plan],
    period: str,
    ids: list[int],
) -> list[int]:
    """Bill the accounts `ids` in one transaction, each in a savepoint; commits. Returns the
    ids of the bills made here (an account billed meanwhile by another process is skipped)."""
    session.rollback()
    lock_for_write(session)
    billed = set(
        session.scalars(
            select(ServiceBill.service_account_id).where(
                ServiceBill.service_account_id.in_(ids), ServiceBill.period == period
            )
        )
    )
    ids = [i for i in ids if i not in billed]
    if not ids:
        session.commit()
        return []
    accounts = session.scalars(
        select(ServiceAccount)
        .where(ServiceAccount.id.in_(ids))
        .order_by(ServiceAccount.id)
        .options(selectinload(ServiceAccount.lines))
    ).all()
    previous = _previous_bills(session, ids, period)
    charges = _charges(session, ids, period)
    cuts = {a.id: cut_date(period, a.billing_day) for a in accounts}
    starts = {
        a.id: day_end(previous[a.id].cut_date)
        if a.id in previous
        else day_end(cycle_start(period, a.billing_day) - timedelta(days=1))
        for a in accounts
    }
    payments = _payments(
        session, ids, min(starts.values()), max(day_end(cut) for cut in cuts.values())
    )

    def make(account: ServiceAccount) -> tuple[ServiceBill, list[int]] | None:
        cut = cuts[account.id]
        paid = [
            (when, amount, forma)
            for when, amount, forma in payments.get(account.id, [])
            if starts[account.id] <= _aware(when) < day_end(cut)
        ]
        account_charges = charges.get(account.id, [])
        lines = _ticket_lines(account, plans, account_charges, period)
        if not lines:
            return None  # nothing to bill (its lines closed meanwhile)
        total = document.total(lines)
        previous_balance = previous[account.id].balance_due if account.id in previous else ZERO
        payments_total = sum((amount for _, amount, _ in paid), ZERO)
        latest_form = next((f for _, _, f in reversed(paid) if f in document.formas_pago), None)
        ticket = Ticket(
            branch_id=branch_id,
            order_number=account.number[:40],
            ticket_number=f"{period}-{account.number}"[:40],
            sold_at=sold_at(cut),
            total=total,
            currency=document.currency,
            forma_pago=latest_form,
            status=TicketStatus.OPEN,
            lines=lines,
        )
        bill = ServiceBill(
            issuer_id=issuer_id,
            service_account_id=account.id,
            period=period,
            kind=document.kind_for(account),
            cut_date=cut,
            due_date=due_date(cut),
            previous_balance=previous_balance,
            charges_total=total,
            payments_total=payments_total,
            balance_due=previous_balance + total - payments_total,
            ticket=ticket,
        )
        return bill, [c.id for c in account_charges]

    # The whole batch in one savepoint (one flush: the inserts go in bulk); should another
    # run have billed one of its accounts meanwhile, account by account, each in its own.
    try:
        with session.begin_nested():
            made = _write(session, [m for a in accounts if (m := make(a)) is not None])
    except IntegrityError:
        made = []
        for account in accounts:
            if (bill := make(account)) is None:
                continue
            try:
                with session.begin_nested():
                    made += _write(session, [bill])
            except IntegrityError:  # another run billed it first: its bill stands
                log.info("account %s was billed for %s by another run", account.id, period)
    session.commit()
    return made


def _write(session: Session, bills: list[tuple[ServiceBill, list[int]]]) -> list[int]:
    """Insert `bills` (with their tickets and lines) and give them their charges; flushes
    (the caller's savepoint and transaction decide)."""
    session.add_all([bill for bill, _ in bills])
    session.flush()
    for bill, charge_ids in bills:
        if charge_ids:
            session.execute(
                update(Charge)
                .where(Charge.id.in_(charge_ids), Charge.bill_id.is_(None))
                .values(bill_id=bill.id)
                .execution_options(synchronize_session=False)
            )
    return [bill.id for bill, _ in bills]


def _ticket_lines(
    account: ServiceAccount, plans: dict[int, _Plan], charges: list[Charge], period: str
) -> list[TicketLine]:
    lines = []
    for line in account.lines:
        if line.status is not AccountStatus.ACTIVE or line.plan_id not in plans:
            continue
        plan = plans[line.plan_id]
        lines.append(
            TicketLine(
                position=len(lines) + 1,
                description=f"{plan.name} — línea {line_label(line.number)}, periodo {period}",
                clave_prod_serv=plan.clave_prod_serv,
                clave_unidad=plan.clave_unidad,
                quantity=Decimal(1),
                unit_price=plan.fee,
                **_tax(plan.tax_rate),
            )
        )
    for charge in charges:
        lines.append(
            TicketLine(
                position=len(lines) + 1,
                description=charge.description[:1000],
                clave_prod_serv=charge.clave_prod_serv,
                clave_unidad=charge.clave_unidad,
                quantity=charge.quantity,
                unit_price=charge.unit_price,
                **_tax(charge.tax_rate),
            )
        )
    return lines


# --- The run -----------------------------------------------------------------------------------


class _Pulse:
    """The run's heartbeat, renewed at most every HEARTBEAT_EVERY seconds (its own commit)."""

    def __init__(self, session: Session, run_id: int):
        self.session, self.run_id = session, run_id
        self.last = clock.monotonic()

    def beat(self, force: bool = False, **values) -> None:
        if not force and clock.monotonic() - self.last < HEARTBEAT_EVERY:
            return
        self.session.execute(
            update(BillingRun)
            .where(BillingRun.id == self.run_id)
            .values(heartbeat_at=utcnow(), **values)
        )
        self.session.commit()
        self.last = clock.monotonic()


def _count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _done(session: Session, issuer_id: int, period: str) -> int:
    return _count(
        session,
        select(ServiceBill.id).where(
            ServiceBill.issuer_id == issuer_id, ServiceBill.period == period
        ),
    )


def _failed(session: Session, issuer_id: int, period: str) -> int:
    """Invoice bills whose invoice is neither stamped nor on its way (their ticket is open)."""
    return _count(
        session,
        select(ServiceBill.id)
        .join(Ticket, Ticket.id == ServiceBill.ticket_id)
        .where(
            ServiceBill.issuer_id == issuer_id,
            ServiceBill.period == period,
            ServiceBill.kind == BillKind.INVOICE,
            Ticket.status == TicketStatus.OPEN,
        ),
    )


def _waiting(session: Session, issuer_id: int, period: str, max_day: int) -> int:
    if max_day >= 31:
        return 0
    return _count(
        session,
        select(ServiceAccount.id).where(
            ServiceAccount.issuer_id == issuer_id,
            ServiceAccount.status == AccountStatus.ACTIVE,
            ServiceAccount.billing_day > max_day,
        ),
    )


def _issue(
    session: Session,
    document: BillDocument,
    bill_id: int,
    now: datetime,
    problems: list[str],
) -> Issued:
    bill = session.get(ServiceBill, bill_id)
    outcome = document.issue(session, bill, bill.account, now)
    if outcome.issued is Issued.FAILED:
        log.warning("bill %s: document not issued: %s", bill_id, outcome.reason)
        if outcome.reason and len(problems) < 1:
            problems.append(outcome.reason)
    return outcome.issued


def run(
    session: Session,
    stamping: Stamping,
    issuer: Issuer,
    period: str,
    now: datetime,
    progress: Callable[[RunState], None] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> RunState:
    """Bill every active account of `issuer` for `period` whose corte is over at `now`,
    finishing first what an earlier run left undone; commits as it goes. BillingError when
    the run cannot start. `progress` is called after each batch with the run's state."""
    check(issuer, period, now)
    try:
        document = document_for(issuer, stamping)
    except UnsupportedCountry:
        raise BillingError("unsupported_country", issuer.country) from None
    issuer_id = issuer.id
    max_day = last_cut_day(period, now)
    run_id = start_run(session, issuer_id, period)
    pulse = _Pulse(session, run_id)
    problems: list[str] = []
    try:
        branch_id = billing_branch(session, issuer)
        plans = _plans(session, issuer_id)
        to_bill = _to_bill(issuer_id, period, max_day)
        total = _done(session, issuer_id, period) + _count(session, to_bill)
        waiting = _waiting(session, issuer_id, period, max_day)

        def state(finished: bool = False) -> RunState:
            done = _done(session, issuer_id, period)
            failed = _failed(session, issuer_id, period)
            pulse.beat(force=True, total=max(total, done), done=done, failed=failed)
            return RunState(run_id, period, max(total, done), done, failed, waiting, finished)

        def report() -> None:
            current = state()
            session.expunge_all()
            if progress is not None:
                progress(current)

        report()
        # 1. What an earlier (killed) run left: bills whose document is still to be issued.
        after = 0
        while ids := session.scalars(
            document.unfinished(issuer_id, period).where(ServiceBill.id > after).limit(batch_size)
        ).all():
            after = ids[-1]
            for bill_id in ids:
                _issue(session, document, bill_id, now, problems)
                pulse.beat()
            report()
        # 2. The accounts without a bill, a batch at a time.
        after = 0
        while ids := session.scalars(
            to_bill.where(ServiceAccount.id > after).order_by(ServiceAccount.id).limit(batch_size)
        ).all():
            after = ids[-1]
            made = _bill_batch(session, document, issuer_id, branch_id, plans, period, ids)
            invoices = session.scalars(
                select(ServiceBill.id)
                .where(ServiceBill.id.in_(made), ServiceBill.kind == BillKind.INVOICE)
                .order_by(ServiceBill.id)
            ).all()
            for bill_id in invoices:
                _issue(session, document, bill_id, now, problems)
                pulse.beat()
            report()
        final = state(finished=True)
        session.execute(
            update(BillingRun)
            .where(BillingRun.id == run_id)
            .values(finished_at=utcnow(), error=problems[0][:2000] if problems else None)
        )
        session.commit()
        session.expunge_all()
        final = replace(final, error=problems[0] if problems else None)
        if progress is not None:
            progress(final)
        return final
    except BaseException as exc:
        session.rollback()
        try:
            session.execute(
                update(BillingRun)
                .where(BillingRun.id == run_id)
                .values(error=f"{type(exc).__name__}: {exc}"[:2000], heartbeat_at=None)
            )
            session.commit()
        except Exception:  # noqa: BLE001 - the original error is what matters
            session.rollback()
        raise


def run_state(session: Session, billing_run: BillingRun) -> RunState:
    """The stored progress of a run, as the back office shows it."""
    return RunState(
        billing_run.id,
        billing_run.period,
        billing_run.total,
        billing_run.done,
        billing_run.failed,
        0,
        billing_run.finished_at is not None,
        billing_run.error,
    )
