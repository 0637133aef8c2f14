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
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from webapp import leases
from webapp.leases import Chore, Sessions
from webapp.mail.deferred import fill
from webapp.mail.transport import Transport, compose, transport_from_config
from webapp.models import MailMessage, MailStatus

log = logging.getLogger(__name__)

ERROR_MAX = 2000

OUTBOX = leases.Outbox(
    MailMessage, MailStatus.PENDING, MailStatus.SENDING, MailStatus.DEAD, "MAIL", "mail"
)
retry_delay = OUTBOX.retry_delay
claim = OUTBOX.claim
_update_own = OUTBOX.update_own
__all__ = ["Chore", "Sessions", "claim", "deliver", "retry_delay", "run_once", "work"]


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
    lease = OUTBOX.renew(session, row, config, now)
    if lease is None:
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
        OUTBOX.failed(session, config, mail_id, lease, attempts, error, now, to=to)
        return False
    _update_own(session, mail_id, lease, status=MailStatus.SENT, sent_at=now, locked_until=None)
    log.info("sent #%s to %s: %s", mail_id, to, subject)
    return True


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
    return OUTBOX.run_once(
        sessions,
        config,
        lambda session, row, at: deliver(session, transport, config, row, at),
        now,
        stop,
    )


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
    leases.work(
        "mail worker",
        lambda: run_once(sessions, config, transport=transport, stop=stop_event),
        sessions,
        interval,
        stop_event,
        chores,
    )
    log.info("mail worker stopped")
