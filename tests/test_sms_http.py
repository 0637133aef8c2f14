"""The SMS worker against Twilio's Messages API played by a loopback HTTP server (Replay):
what it sends, the provider's id it records, what it retries (5xx, 429, timeouts, the provider
down) and what it gives up on at once (a 4xx refusal), and two workers never sending one
message twice."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from sqlalchemy import event, select

from tests.flows import PATIENCE, Answer, Replay, Seen, free_port
from webapp.extensions import db
from webapp.models import SmsMessage, SmsStatus, utcnow
from webapp.sms import queue_sms
from webapp.sms.cli import app_sessions
from webapp.sms.transport import transport_from_url
from webapp.sms.worker import run_once

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "s3cr3t-t0ken"  # noqa: S105
SENDER = "+15005550006"
CODE = "Su código de verificación es 123456"
REFUSAL = {
    "code": 21211,
    "message": "The 'To' number +525512345678 is not a valid phone number.",
    "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400,
}


def created(sid: str) -> Answer:
    """Twilio's 201 for a message it accepted."""
    body = {"sid": sid, "status": "queued", "to": "+525512345678", "from": SENDER}
    return 201, "application/json; charset=utf-8", json.dumps(body).encode()


def error(status: int, body: dict | None = None) -> Answer:
    payload = body or {"code": 20500, "message": "Internal Server Error", "status": status}
    return status, "application/json", json.dumps(payload).encode()


def sms_url(base: str) -> str:
    return f"twilio+http://{SID}:{TOKEN}@{base.removeprefix('http://')}?from=%2B15005550006"


def queue(app, count: int = 1, to: str = "55 1234 5678") -> list[int]:
    with app.app_context():
        texts = [CODE if count == 1 else f"Su código es {n:06d}" for n in range(count)]
        messages = [queue_sms(db.session, to, text) for text in texts]
        db.session.commit()
        return [m.id for m in messages]


def rows(app) -> list[SmsMessage]:
    with app.app_context():
        return list(db.session.scalars(select(SmsMessage).order_by(SmsMessage.id)))


def send_due(app, now=None) -> int:
    return run_once(app_sessions(app), app.config, now)


def form(seen: Seen) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(seen.body.decode()).items()}


@contextmanager
def provider_on(port: int) -> Iterator[Replay]:
    """A Replay listening on `port`, chosen before it came up (the provider was down)."""

    class Late(Replay):
        def server_bind(self) -> None:
            self.server_address = ("127.0.0.1", port)
            super().server_bind()

    replay = Late()
    thread = threading.Thread(target=replay.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        replay.release.set()
        replay.shutdown()
        replay.server_close()


# --- Accepted ---------------------------------------------------------------------------------


def test_accepted_message_records_the_provider_id(make_app, server):
    server.answer = lambda seen: created("SM" + "a" * 32)
    app = make_app(SMS_URL=sms_url(server.url))
    queue(app)
    t0 = utcnow()
    assert send_due(app, t0) == 1

    [seen] = server.seen
    assert seen.method == "POST"
    assert seen.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(seen) == {"To": "+525512345678", "From": SENDER, "Body": CODE}
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen.headers["authorization"] == f"Basic {credentials}"
    [row] = rows(app)
    assert (row.status, row.provider_id, row.sent_at, row.attempts) == (
        SmsStatus.SENT,
        "SM" + "a" * 32,
        t0,
        1,
    )
    assert row.last_error is None and row.locked_until is None

    assert send_due(app, t0 + timedelta(hours=1)) == 0  # once
    assert len(server.seen) == 1


def test_sms_from_is_the_sender_when_the_url_names_none(make_app, server):
    server.answer = lambda seen: created("SM" + "b" * 32)
    url = f"twilio+http://{SID}:{TOKEN}@{server.url.removeprefix('http://')}"
    app = make_app(SMS_URL=url, SMS_FROM="Autofactura")
    queue(app, to="+593 99 123 4567")
    assert send_due(app) == 1
    assert form(server.seen[0]) == {"To": "+593991234567", "From": "Autofactura", "Body": CODE}


# --- Retried ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_provider_error_that_may_pass_is_retried_then_sent(make_app, server, status):
    answers = [error(status), created("SM" + "c" * 32)]
    server.answer = lambda seen: answers.pop(0)
    app = make_app(SMS_URL=sms_url(server.url), SMS_RETRY_SECONDS=30)
    queue(app)
    t0 = utcnow()

    assert send_due(app, t0) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (SmsStatus.PENDING, 1)
    assert f"HTTP {status}" in row.last_error
    assert row.next_attempt_at == t0 + timedelta(seconds=30)

    assert send_due(app, t0 + timedelta(seconds=10)) == 0  # not due yet
    assert len(server.seen) == 1
    assert send_due(app, t0 + timedelta(seconds=30)) == 1
    [row] = rows(app)
    assert (row.status, row.attempts, row.provider_id) == (SmsStatus.SENT, 2, "SM" + "c" * 32)
    assert [form(s)["Body"] for s in server.seen] == [CODE, CODE]


def test_provider_down_then_up_is_sent_when_the_retry_is_due(make_app):
    port = free_port()  # nothing listens there: connection refused
    app = make_app(SMS_URL=sms_url(f"http://127.0.0.1:{port}"), SMS_RETRY_SECONDS=30)
    queue(app)
    t0 = utcnow()

    assert send_due(app, t0) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (SmsStatus.PENDING, 1)
    assert "ConnectionError" in row.last_error and "refused" in row.last_error.lower()

    with provider_on(port) as provider:
        provider.answer = lambda seen: created("SM" + "d" * 32)
        assert send_due(app, t0 + timedelta(seconds=10)) == 0  # the retry is not due yet
        assert provider.seen == []
        assert send_due(app, t0 + timedelta(seconds=30)) == 1
        assert len(provider.seen) == 1
    [row] = rows(app)
    assert (row.status, row.provider_id) == (SmsStatus.SENT, "SM" + "d" * 32)


def test_a_provider_that_does_not_answer_in_time_is_retried(make_app, server):
    server.answer = lambda seen: None  # holds the request without answering
    app = make_app(SMS_URL=sms_url(server.url), SMS_TIMEOUT_SECONDS=0.3)
    queue(app)
    t0 = utcnow()
    started = time.monotonic()
    assert send_due(app, t0) == 0
    assert time.monotonic() - started < PATIENCE  # the read timeout ended the wait
    [row] = rows(app)
    assert (row.status, row.attempts) == (SmsStatus.PENDING, 1)
    assert "ReadTimeout" in row.last_error

    server.answer = lambda seen: created("SM" + "e" * 32)
    server.release.set()  # the held request ends
    # The retry waits as long as a busy machine may need for the answer.
    patient = transport_from_url(app.config["SMS_URL"], read_timeout=PATIENCE)
    later = t0 + timedelta(minutes=5)
    assert run_once(app_sessions(app), app.config, later, transport=patient) == 1
    # At least once: the provider may have taken the first request too (it saw both).
    assert len(server.seen) == 2
    assert rows(app)[0].status == SmsStatus.SENT


def test_dead_letter_after_max_attempts_with_backoff(make_app, server):
    server.answer = lambda seen: error(503)
    app = make_app(SMS_URL=sms_url(server.url), SMS_MAX_ATTEMPTS=3, SMS_RETRY_SECONDS=10)
    [sms_id] = queue(app)
    t0 = utcnow()

    assert send_due(app, t0) == 0
    assert rows(app)[0].next_attempt_at == t0 + timedelta(seconds=10)
    assert send_due(app, t0 + timedelta(seconds=10)) == 0
    assert rows(app)[0].next_attempt_at == t0 + timedelta(seconds=30)  # 10 s, then 20 s
    assert send_due(app, t0 + timedelta(seconds=30)) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (SmsStatus.DEAD, 3)
    assert "HTTP 503" in row.last_error

    server.answer = lambda seen: created("SM" + "f" * 32)
    assert send_due(app, t0 + timedelta(days=1)) == 0  # dead letters are not retried
    assert len(server.seen) == 3
    status = app.test_cli_runner().invoke(args=["sms", "status"])
    assert "dead     1" in status.output
    assert f"#{sms_id} to +525512345678, 3 attempt(s): " in status.output


# --- Refused for good -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (400, REFUSAL, "Twilio error 21211: The 'To' number +525512345678 is not a valid"),
        (401, {"code": 20003, "message": "Authenticate", "status": 401}, "20003: Authenticate"),
        (404, None, "HTTP 404"),
    ],
)
def test_a_refusal_is_a_dead_letter_at_once_with_the_providers_message(
    make_app, server, status, body, shown
):
    if body is None:
        server.answer = lambda seen: (status, "text/html", b"<h1>Not Found</h1>")
    else:
        server.answer = lambda seen: error(status, body)
    app = make_app(SMS_URL=sms_url(server.url), SMS_MAX_ATTEMPTS=8)
    [sms_id] = queue(app)
    t0 = utcnow()

    assert send_due(app, t0) == 0
    [row] = rows(app)
    assert (row.status, row.attempts, row.provider_id) == (SmsStatus.DEAD, 1, None)
    assert "SmsRefused" in row.last_error and shown in row.last_error
    assert TOKEN not in row.last_error

    assert send_due(app, t0 + timedelta(days=1)) == 0  # never tried again
    assert len(server.seen) == 1
    status_output = app.test_cli_runner().invoke(args=["sms", "status"]).output
    assert f"#{sms_id} to +525512345678" in status_output and shown in status_output


# --- Two workers ------------------------------------------------------------------------------


def test_two_workers_never_send_one_message_twice(make_app, server):
    ids = itertools.count(1)

    def slow_provider(seen: Seen) -> Answer:
        time.sleep(0.02)  # a provider's latency, so both workers have messages in flight
        return created("SM" + format(next(ids), "032x"))

    server.answer = slow_provider
    app = make_app(SMS_URL=sms_url(server.url))
    queue(app, 30)

    # Hold each claim open a moment after its SELECT, so the two workers' claims overlap.
    @event.listens_for(app.extensions["db"].engine, "after_cursor_execute")
    def slow_claim(conn, cursor, statement, parameters, context, executemany):
        if "sms_message.next_attempt_at <=" in statement:
            time.sleep(0.1)

    barrier = threading.Barrier(2)
    counts: list[int] = []

    def worker() -> None:
        barrier.wait()
        counts.append(send_due(app))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)

    bodies = sorted(form(s)["Body"] for s in server.seen)
    assert bodies == sorted(m.text for m in rows(app))  # each exactly once
    assert sum(counts) == 30 and min(counts) > 0  # both workers took part
    assert all(m.status == SmsStatus.SENT for m in rows(app))
    assert len({m.provider_id for m in rows(app)}) == 30
