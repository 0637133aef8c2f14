"""The SMS worker: claim due messages, send them, record the outcome (as the mail worker does).

A message is due when it is pending and its next_attempt_at has come, or when it is still
marked sending after its lease ran out (the worker sending it died). Claiming locks rows with
FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent workers take different messages; on
SQLite the claim runs in a BEGIN IMMEDIATE transaction, which serialises writers.

A failure that may pass (the provider down, slow, throttling, answering 5xx) is tried again
with backoff, SMS_RETRY_SECONDS doubled each time, up to SMS_MAX_ATTEMPTS; a refusal for good
(SmsRefused: a 4xx of the provider, e.g. an invalid number) is a dead letter at once. Delivery
is at least once: a worker killed between the provider's answer and recording it leaves a
message that is sent again after its lease.

Logs never carry a message's text (it may be a verification code) and show numbers masked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.models import SmsMessage, SmsStatus, utcnow
from webapp.sms.outbox import mask
from webapp.sms.transport import Sms, SmsRefused, Transport, transport_from_config

log = logging.getLogger(__name__)

BATCH_SIZE = 10
MAX_RETRY_DELAY = timedelta(hours=6)
ERROR_MAX = 2000

# Where the worker's sessions come from: each call gives a session for one run, closed when
# its `with` block ends (a sessionmaker does; the app's edge is webapp/sms/cli.py).
Sessions = Callable[[], AbstractContextManager[Session]]


def retry_delay(config: Mapping, attempts: int) -> timedelta:
    """SMS_RETRY_SECONDS doubled after each failed attempt, at most six hours."""
    seconds = float(config["SMS_RETRY_SECONDS"]) * 2 ** (attempts - 1)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def claim(session: Session, config: Mapping, now: datetime, skip: set[int]) -> list[SmsMessage]:
    """Mark up to BATCH_SIZE due messages as sending under a lease, and commit."""
    lock_for_write(session)
    due = or_(
        and_(SmsMessage.status == SmsStatus.PENDING, SmsMessage.next_attempt_at <= now),
        and_(SmsMessage.status == SmsStatus.SENDING, SmsMessage.locked_until < now),
    )
    query = select(SmsMessage).where(due)
    if skip:
        query = query.where(SmsMessage.id.not_in(skip))
    query = (
        query.order_by(SmsMessage.next_attempt_at, SmsMessage.id)
        .limit(BATCH_SIZE)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    rows = list(session.scalars(query))
    lease = timedelta(seconds=float(config["SMS_LEASE_SECONDS"]))
    for row in rows:
        row.status = SmsStatus.SENDING
        row.locked_until = now + lease
    session.commit()
    return rows


def _update_own(session: Session, sms_id: int, lease: datetime, **values) -> bool:
    """Update a message this worker holds under `lease`; False if another worker took it."""
    result = session.execute(
        update(SmsMessage)
        .where(
            SmsMessage.id == sms_id,
            SmsMessage.status == SmsStatus.SENDING,
            SmsMessage.locked_until == lease,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def deliver(
    session: Session, transport: Transport, config: Mapping, row: SmsMessage, now: datetime
) -> bool:
    """Send one claimed message and record the outcome; True when it was sent.

    The lease is renewed first, so a batch slower than SMS_LEASE_SECONDS does not send a
    message whose lease ran out and that another worker may have claimed meanwhile. No
    transaction is open while the provider is talked to; SENT (with the provider's id) is
    recorded in a short transaction of its own as soon as it answers.
    """
    sms_id, to, attempts = row.id, row.to_number, row.attempts + 1
    message = Sms(sms_id, to, config["SMS_FROM"], row.text, row.created_at)
    lease = now + timedelta(seconds=float(config["SMS_LEASE_SECONDS"]))
    assert row.locked_until is not None
    if not _update_own(session, sms_id, row.locked_until, locked_until=lease):
        log.warning("skipped SMS #%s: its lease ran out and another worker has it", sms_id)
        return False
    try:
        provider_id = transport.send(message)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, retried or dead
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        outcome = {"attempts": attempts, "last_error": error, "locked_until": None}
        if isinstance(exc, SmsRefused):
            _update_own(session, sms_id, lease, status=SmsStatus.DEAD, **outcome)
            log.error("dead SMS #%s to %s, refused by the provider: %s", sms_id, mask(to), error)
        elif attempts >= int(config["SMS_MAX_ATTEMPTS"]):
            _update_own(session, sms_id, lease, status=SmsStatus.DEAD, **outcome)
            log.error("dead SMS #%s to %s after %s attempts: %s", sms_id, mask(to), attempts, error)
        else:
            retry_at = now + retry_delay(config, attempts)
            _update_own(
                session,
                sms_id,
                lease,
                status=SmsStatus.PENDING,
                next_attempt_at=retry_at,
                **outcome,
            )
            log.warning(
                "failed SMS #%s to %s (attempt %s), retry at %s: %s",
                sms_id,
                mask(to),
                attempts,
                retry_at.isoformat(timespec="seconds"),
                error,
            )
        return False
    _update_own(
        session,
        sms_id,
        lease,
        status=SmsStatus.SENT,
        sent_at=now,
        locked_until=None,
        attempts=attempts,
        provider_id=provider_id[:64] if provider_id else None,
    )
    log.info("sent SMS #%s to %s (provider id %s)", sms_id, mask(to), provider_id or "-")
    return True


def _release(session: Session, rows: list[SmsMessage]) -> None:
    """Hand claimed but unsent messages back at once (clean shutdown)."""
    for row in rows:
        assert row.locked_until is not None
        _update_own(session, row.id, row.locked_until, status=SmsStatus.PENDING, locked_until=None)


def run_once(
    sessions: Sessions,
    config: Mapping,
    now: datetime | None = None,
    *,
    transport: Transport | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Send every message due at `now` (default: the clock), each at most once; the count sent.

    Works in one session from `sessions`, with the SMS_* settings of `config`. Stops early,
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


def work(
    sessions: Sessions,
    config: Mapping,
    interval: float,
    stop_event: threading.Event,
    transport: Transport | None = None,
) -> None:
    """Run the worker every `interval` seconds, a session per run, until `stop_event` is set."""
    transport = transport or transport_from_config(config)
    log.info("sms worker started: %s, every %ss", transport.describe(), interval)
    while not stop_event.is_set():
        try:
            run_once(sessions, config, transport=transport, stop=stop_event)
        except Exception:  # noqa: BLE001 - e.g. the database is down: try again later
            log.exception("sms worker run failed; trying again in %ss", interval)
        stop_event.wait(interval)
    log.info("sms worker stopped")
