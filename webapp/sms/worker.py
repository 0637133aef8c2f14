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
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from webapp import leases
from webapp.leases import Sessions
from webapp.models import SmsMessage, SmsStatus
from webapp.sms.outbox import mask
from webapp.sms.transport import Sms, SmsRefused, Transport, transport_from_config

log = logging.getLogger(__name__)

ERROR_MAX = 2000

OUTBOX = leases.Outbox(
    SmsMessage, SmsStatus.PENDING, SmsStatus.SENDING, SmsStatus.DEAD, "SMS", "SMS"
)
retry_delay = OUTBOX.retry_delay
claim = OUTBOX.claim
_update_own = OUTBOX.update_own
__all__ = ["Sessions", "claim", "deliver", "retry_delay", "run_once", "work"]


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
    lease = OUTBOX.renew(session, row, config, now)
    if lease is None:
        return False
    try:
        provider_id = transport.send(message)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, retried or dead
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        refused = isinstance(exc, SmsRefused)  # a 4xx of the provider: no retry can help
        OUTBOX.failed(
            session, config, sms_id, lease, attempts, error, now, to=mask(to), for_good=refused
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
) -> None:
    """Run the worker every `interval` seconds, a session per run, until `stop_event` is set."""
    transport = transport or transport_from_config(config)
    log.info("sms worker started: %s, every %ss", transport.describe(), interval)
    leases.work(
        "sms worker",
        lambda: run_once(sessions, config, transport=transport, stop=stop_event),
        sessions,
        interval,
        stop_event,
    )
    log.info("sms worker stopped")
