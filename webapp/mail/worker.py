"""The outbox worker: claim due messages, send them, record the outcome.

A message is due when it is pending and its next_attempt_at has come, or when it is still
marked sending after its lease ran out (the worker sending it died). Claiming locks rows with
FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent workers take different messages; on
SQLite the claim runs in a BEGIN IMMEDIATE transaction, which serialises writers. Delivery is
at least once: a worker killed between sending and recording the outcome leaves a message
that is sent again after its lease, with the same Message-ID.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.mail.deferred import fill
from webapp.mail.transport import Transport, compose, transport_from_config
from webapp.models import MailMessage, MailStatus, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 10
MAX_RETRY_DELAY = timedelta(hours=6)
ERROR_MAX = 2000

# Where the worker's sessions come from: each call gives a session for one run, closed when
# its `with` block ends (a sessionmaker does; the app's edge is webapp/mail/cli.py).
Sessions = Callable[[], AbstractContextManager[Session]]


def retry_delay(config: Mapping, attempts: int) -> timedelta:
    """MAIL_RETRY_SECONDS doubled after each failed attempt, at most six hours."""
    seconds = float(config["MAIL_RETRY_SECONDS"]) * 2 ** (attempts - 1)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def claim(session: Session, config: Mapping, now: datetime, skip: set[int]) -> list[MailMessage]:
    """Mark up to BATCH_SIZE due messages as sending under a lease, and commit."""
    lock_for_write(session)
    due = or_(
        and_(MailMessage.status == MailStatus.PENDING, MailMessage.next_attempt_at <= now),
        and_(MailMessage.status == MailStatus.SENDING, MailMessage.locked_until < now),
    )
    query = select(MailMessage).where(due)
    if skip:
        query = query.where(MailMessage.id.not_in(skip))
    query = (
        query.order_by(MailMessage.next_attempt_at, MailMessage.id)
        .limit(BATCH_SIZE)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    rows = list(session.scalars(query))
    lease = timedelta(seconds=float(config["MAIL_LEASE_SECONDS"]))
    for row in rows:
        row.status = MailStatus.SENDING
        row.locked_until = now + lease
    session.commit()
    return rows


def _update_own(session: Session, mail_id: int, lease: datetime, **values) -> bool:
    """Update a message this worker holds under `lease`; False if another worker took it."""
    result = session.execute(
        update(MailMessage)
        .where(
            MailMessage.id == mail_id,
            MailMessage.status == MailStatus.SENDING,
            MailMessage.locked_until == lease,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def deliver(
    session: Session, transport: Transport, config: Mapping, row: MailMessage, now: datetime
) -> bool:
    """Send one claimed message and record the outcome; True when it was sent.

    The lease is renewed first, so a batch slower than MAIL_LEASE_SECONDS does not send a
    message whose lease ran out and that another worker may have claimed meanwhile.

    Attachments left for delivery (webapp.mail.deferred: an invoice's PDF) are rendered and
    stored first, each in a commit of its own, so a retry does not render them again; a
    renderer that fails is a failed attempt like any other.

    At least once: SENT is recorded as soon as the transport returns, in a short transaction
    of its own (no transaction is open while the server is talked to). A worker killed in
    that window, or a database that fails to record it, leaves the message sending under its
    lease; after the lease it goes again, with the same Message-ID (fixed when it was queued),
    so the receiving side can tell the copy.
    """
    mail_id, to, subject, attempts = row.id, row.to_addrs, row.subject, row.attempts + 1
    lease = now + timedelta(seconds=float(config["MAIL_LEASE_SECONDS"]))
    assert row.locked_until is not None
    if not _update_own(session, mail_id, row.locked_until, locked_until=lease):
        log.warning("skipped #%s: its lease ran out and another worker has it", mail_id)
        return False
    try:
        fill(session, row)
        message = compose(row, config["MAIL_FROM"])
        session.commit()  # end the read of the attachments before talking to the network
        transport.send(message, mail_id)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        if session.in_transaction():
            session.rollback()
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        outcome = {"attempts": attempts, "last_error": error, "locked_until": None}
        if attempts >= int(config["MAIL_MAX_ATTEMPTS"]):
            _update_own(session, mail_id, lease, status=MailStatus.DEAD, **outcome)
            log.error("dead #%s to %s after %s attempts: %s", mail_id, to, attempts, error)
        else:
            retry_at = now + retry_delay(config, attempts)
            _update_own(
                session,
                mail_id,
                lease,
                status=MailStatus.PENDING,
                next_attempt_at=retry_at,
                **outcome,
            )
            log.warning(
                "failed #%s to %s (attempt %s), retry at %s: %s",
                mail_id,
                to,
                attempts,
                retry_at.isoformat(timespec="seconds"),
                error,
            )
        return False
    _update_own(session, mail_id, lease, status=MailStatus.SENT, sent_at=now, locked_until=None)
    log.info("sent #%s to %s: %s", mail_id, to, subject)
    return True


def _release(session: Session, rows: list[MailMessage]) -> None:
    """Hand claimed but unsent messages back at once (clean shutdown)."""
    for row in rows:
        assert row.locked_until is not None
        _update_own(session, row.id, row.locked_until, status=MailStatus.PENDING, locked_until=None)


def run_once(
    sessions: Sessions,
    config: Mapping,
    now: datetime | None = None,
    *,
    transport: Transport | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Send every message due at `now` (default: the clock), each at most once; the count sent.

    Works in one session from `sessions`, with the MAIL_* settings of `config`. Stops early,
    handing its remaining claimed messages back, when `stop` is set.
    """
    transport = transport or transport_from_config(config)
    sent = 0
    seen: set[int] = set()
    with sessions() as session:
        while True:
            at = now or utcnow()
            batch = claim(session, config, at, seen)
            if not batch:
                return sent
            seen.update(row.id for row in batch)
            for index, row in enumerate(batch):
                if stop is not None and stop.is_set():
                    _release(session, batch[index:])
                    return sent
                sent += deliver(session, transport, config, row, now or utcnow())


Chore = tuple[float, Callable[[Session], object]]
"""Something the worker also does every so many seconds, in a session of its own (the
stamping service's reconcile: webapp.mail.cli)."""


def work(
    sessions: Sessions,
    config: Mapping,
    interval: float,
    stop_event: threading.Event,
    transport: Transport | None = None,
    chores: Sequence[Chore] = (),
) -> None:
    """Run the worker every `interval` seconds, a session per run, until `stop_event` is set;
    each chore runs when its period has passed (first at start)."""
    transport = transport or transport_from_config(config)
    log.info("mail worker started: %s, every %ss", transport.describe(), interval)
    due = [0.0] * len(chores)
    while not stop_event.is_set():
        try:
            run_once(sessions, config, transport=transport, stop=stop_event)
        except Exception:  # noqa: BLE001 - e.g. the database is down: try again later
            log.exception("mail worker run failed; trying again in %ss", interval)
        for index, (period, chore) in enumerate(chores):
            if stop_event.is_set() or time.monotonic() < due[index]:
                continue
            due[index] = time.monotonic() + period
            try:
                with sessions() as session:
                    chore(session)
            except Exception:  # noqa: BLE001 - logged; tried again after its period
                log.exception("worker chore %s failed", getattr(chore, "__name__", chore))
        stop_event.wait(interval)
    log.info("mail worker stopped")
