"""Outbox rows handed to one worker at a time under a lease (no Flask): the part the mail and
SMS workers share.

A row is due when it is pending and its `next_attempt_at` has come, or when it is sending
under a lease that ran out (its worker died). `claim` marks up to BATCH_SIZE due rows as
sending under a lease and commits; a worker then changes only rows it still holds
(`update_own`: the same status and lease, or nothing). PostgreSQL claims with
FOR UPDATE SKIP LOCKED; SQLite in a BEGIN IMMEDIATE transaction (`lock_for_write`), which
serialises writers. Settings: <PREFIX>_LEASE_SECONDS, <PREFIX>_RETRY_SECONDS and
<PREFIX>_MAX_ATTEMPTS.

    OUTBOX = Outbox(MailMessage, PENDING, SENDING, DEAD, "MAIL", "mail")
    OUTBOX.run_once(sessions, config, deliver_one, now, stop)

where deliver_one(session, row, now) renews the lease (`renew`), sends, then records SENT
(`update_own`) or the failure (`failed`: retried later, or a dead letter).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.models import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 10
MAX_RETRY_DELAY = timedelta(hours=6)

# Where a worker's sessions come from: each call gives a session for one run, closed when its
# `with` block ends (a sessionmaker does; the app's edges are webapp/mail/cli.py and
# webapp/sms/cli.py).
Sessions = Callable[[], AbstractContextManager[Session]]

Chore = tuple[float, Callable[[Session], object]]
"""Something a worker also does every so many seconds, in a session of its own (the stamping
service's reconcile: webapp.mail.cli)."""


@dataclass(frozen=True)
class Outbox:
    """One outbox table: its model (id, status, next_attempt_at, locked_until), its pending
    and sending states, and the prefix of its settings."""

    model: Any
    pending: Any
    sending: Any
    dead: Any
    prefix: str
    label: str  # in the logs: "mail", "SMS"

    def retry_delay(self, config: Mapping, attempts: int) -> timedelta:
        """<PREFIX>_RETRY_SECONDS doubled after each failed attempt, at most six hours."""
        seconds = float(config[f"{self.prefix}_RETRY_SECONDS"]) * 2 ** (attempts - 1)
        return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)

    def lease(self, config: Mapping) -> timedelta:
        return timedelta(seconds=float(config[f"{self.prefix}_LEASE_SECONDS"]))

    def claim(self, session: Session, config: Mapping, now: datetime, skip: set[int]) -> list:
        """Mark up to BATCH_SIZE due rows as sending under a lease, and commit."""
        m = self.model
        lock_for_write(session)
        due = or_(
            and_(m.status == self.pending, m.next_attempt_at <= now),
            and_(m.status == self.sending, m.locked_until < now),
        )
        query = select(m).where(due)
        if skip:
            query = query.where(m.id.not_in(skip))
        query = (
            query.order_by(m.next_attempt_at, m.id)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        rows = list(session.scalars(query))
        for row in rows:
            row.status = self.sending
            row.locked_until = now + self.lease(config)
        session.commit()
        return rows

    def update_own(self, session: Session, row_id: int, lease: datetime, **values) -> bool:
        """Update a row this worker holds under `lease`; False if another worker took it."""
        m = self.model
        result = session.execute(
            update(m)
            .where(m.id == row_id, m.status == self.sending, m.locked_until == lease)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return result.rowcount == 1

    def renew(self, session: Session, row: Any, config: Mapping, now: datetime) -> datetime | None:
        """Renew this worker's lease on a claimed `row` before sending it, so a batch slower
        than the lease does not send a row another worker may have claimed meanwhile; the new
        lease, or None when the row is no longer this worker's."""
        assert row.locked_until is not None
        lease = now + self.lease(config)
        if not self.update_own(session, row.id, row.locked_until, locked_until=lease):
            log.warning(
                "skipped %s #%s: its lease ran out and another worker has it", self.label, row.id
            )
            return None
        return lease

    def failed(
        self,
        session: Session,
        config: Mapping,
        row_id: int,
        lease: datetime,
        attempts: int,
        error: str,
        now: datetime,
        *,
        to: str,
        for_good: bool = False,
    ) -> None:
        """Record a failed attempt: a dead letter when it failed `for_good` or after
        <PREFIX>_MAX_ATTEMPTS attempts, else pending again after the retry delay."""
        outcome = {"attempts": attempts, "last_error": error, "locked_until": None}
        if for_good or attempts >= int(config[f"{self.prefix}_MAX_ATTEMPTS"]):
            self.update_own(session, row_id, lease, status=self.dead, **outcome)
            why = "refused for good" if for_good else f"after {attempts} attempts"
            log.error("dead %s #%s to %s, %s: %s", self.label, row_id, to, why, error)
            return
        retry_at = now + self.retry_delay(config, attempts)
        self.update_own(
            session, row_id, lease, status=self.pending, next_attempt_at=retry_at, **outcome
        )
        log.warning(
            "failed %s #%s to %s (attempt %s), retry at %s: %s",
            self.label,
            row_id,
            to,
            attempts,
            retry_at.isoformat(timespec="seconds"),
            error,
        )

    def release(self, session: Session, rows: list) -> None:
        """Hand claimed but unsent rows back at once (clean shutdown)."""
        for row in rows:
            assert row.locked_until is not None
            self.update_own(
                session, row.id, row.locked_until, status=self.pending, locked_until=None
            )

    def run_once(
        self,
        sessions: Sessions,
        config: Mapping,
        deliver: Callable[[Session, Any, datetime], bool],
        now: datetime | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Deliver every row due at `now` (default: the clock), each at most once, with
        `deliver(session, row, now)`; the count delivered. Stops early, handing its remaining
        claimed rows back, when `stop` is set."""
        sent = 0
        seen: set[int] = set()
        with sessions() as session:
            while True:
                batch = self.claim(session, config, now or utcnow(), seen)
                if not batch:
                    return sent
                seen.update(row.id for row in batch)
                for index, row in enumerate(batch):
                    if stop is not None and stop.is_set():
                        self.release(session, batch[index:])
                        return sent
                    sent += deliver(session, row, now or utcnow())


def work(
    name: str,
    run: Callable[[], object],
    sessions: Sessions,
    interval: float,
    stop_event: threading.Event,
    chores: Sequence[Chore] = (),
) -> None:
    """Call `run` every `interval` seconds until `stop_event` is set; each chore runs when its
    period has passed (first at start). A failing run or chore is logged and tried again."""
    due = [0.0] * len(chores)
    while not stop_event.is_set():
        try:
            run()
        except Exception:  # noqa: BLE001 - e.g. the database is down: try again later
            log.exception("%s run failed; trying again in %ss", name, interval)
        for index, (period, chore) in enumerate(chores):
            if stop_event.is_set() or time.monotonic() < due[index]:
                continue
            due[index] = time.monotonic() + period
            try:
                with sessions() as session:
                    chore(session)
            except Exception:  # noqa: BLE001 - logged; tried again after its period
                log.exception("%s chore %s failed", name, getattr(chore, "__name__", chore))
        stop_event.wait(interval)
