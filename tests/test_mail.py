"""The mail outbox: queued with the change that causes it, delivered by the worker to a real
SMTP server (aiosmtpd on loopback), retried with backoff, never lost when a worker dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError

from tests.flows import PATIENCE, free_port
from webapp.config import ROOT
from webapp.db import make_engine
from webapp.extensions import db
from webapp.mail import queue_mail
from webapp.mail.cli import app_sessions
from webapp.mail.transport import (
    FileTransport,
    SmtpTransport,
    transport_from_config,
    transport_from_url,
)
from webapp.mail.worker import claim, deliver, run_once
from webapp.models import Issuer, MailMessage, MailStatus, utcnow

PDF = b"%PDF-1.4\n% factura de prueba\n%%EOF\n"
XML = b'<?xml version="1.0" encoding="UTF-8"?><cfdi:Comprobante Version="4.0"/>'


# Bound of every wait on another process or thread: generous, for a busy machine (a worker
# process may take many seconds to start); a wait ends as soon as its condition holds.
DEADLINE = PATIENCE


def queue(app, count: int = 1, **kwargs) -> list[int]:
    """Queue `count` messages and commit; their row ids."""
    with app.app_context():
        messages = [
            queue_mail(
                db.session,
                kwargs.get("to", "cliente@example.com"),
                kwargs.get("subject", f"Su factura {n + 1}"),
                kwargs.get("text", "Adjuntamos su factura."),
                kwargs.get("html"),
                kwargs.get("attachments", ()),
            )
            for n in range(count)
        ]
        db.session.commit()
        return [m.id for m in messages]


def rows(app) -> list[MailMessage]:
    with app.app_context():
        return list(db.session.scalars(select(MailMessage).order_by(MailMessage.id)))


def send_due(app, now=None) -> int:
    """One run of the worker over `app`'s outbox, as `flask mail worker --once` does."""
    return run_once(app_sessions(app), app.config, now)


def issuer(rfc: str = "AAA010101AAA", slug: str = "tienda") -> Issuer:
    return Issuer(slug=slug, rfc=rfc, legal_name="Tienda SA", regimen_fiscal="601", cp="06000")


# --- Queueing -------------------------------------------------------------------------------


def test_mail_is_queued_in_the_transaction_of_the_change(app, tmp_path):
    with app.app_context():
        session = db.session
        session.add(issuer())
        queue_mail(session, "cliente@example.com", "Bienvenido", "Hola")
        session.rollback()
    assert rows(app) == []
    assert send_due(app) == 0

    # A change that fails at commit takes its email with it.
    with app.app_context():
        db.session.add(issuer())
        db.session.commit()
    with app.app_context():
        session = db.session
        session.add(issuer())  # same RFC: the commit fails
        queue_mail(session, "cliente@example.com", "Bienvenido", "Hola")
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
    assert rows(app) == []

    with app.app_context():
        session = db.session
        session.add(issuer("BBB010101BBB", "otra"))
        queue_mail(session, "cliente@example.com", "Bienvenido", "Hola")
        session.commit()
    assert [(m.status, m.attempts) for m in rows(app)] == [(MailStatus.PENDING, 0)]
    assert send_due(app) == 1
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("", "Factura"),
        ("   ", "Factura"),
        ([], "Factura"),
        ("cliente", "Factura"),
        ("cliente@example.com\r\nBcc: otro@example.com", "Factura"),
        ("cliente@example.com, otro@example.com", "Factura"),
        ("Cliente <cliente@example.com>", "Factura"),
        ("cliente@example.com", "Factura\r\nBcc: otro@example.com"),
        ("cliente@example.com", ""),
    ],
)
def test_queue_mail_refuses_bad_addresses_and_header_injection(app, to, subject):
    with app.app_context():
        with pytest.raises(ValueError):
            queue_mail(db.session, to, subject, "texto")
        db.session.commit()
    assert rows(app) == []


def test_message_ids_are_unique_and_use_the_sender_domain(make_app):
    app = make_app(MAIL_FROM="Facturas <facturas@tienda.example>")
    queue(app, 3)
    ids = [m.message_id for m in rows(app)]
    assert len(set(ids)) == 3
    assert all(i.startswith("<") and i.endswith("@tienda.example>") for i in ids)


# --- Transports -----------------------------------------------------------------------------


def test_file_transport_writes_an_eml_with_the_attachment(app, tmp_path):
    [mail_id] = queue(
        app,
        subject="Su factura A-17",
        text="Consulte su factura en http://localhost/factura/17",
        html="<p>Su <b>factura</b></p>",
        attachments=[("A-17.pdf", "application/pdf", PDF), ("A-17.xml", "application/xml", XML)],
    )
    assert send_due(app) == 1

    [eml] = (tmp_path / "mail").glob("*.eml")
    assert eml.name.endswith(f"-{mail_id}.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    [row] = rows(app)
    assert message["Message-ID"] == row.message_id
    assert message["To"] == "cliente@example.com"
    assert message["Subject"] == "Su factura A-17"
    assert "http://localhost/factura/17" in message.get_body(("plain",)).get_content()
    assert "<b>factura</b>" in message.get_body(("html",)).get_content()
    attachments = {a.get_filename(): a.get_content() for a in message.iter_attachments()}
    assert attachments == {"A-17.pdf": PDF, "A-17.xml": XML}
    assert row.status == MailStatus.SENT and row.sent_at is not None and row.locked_until is None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_delivery_with_login_attachments_and_message_id(make_app, smtp_server):
    user, password = "facturas@tienda.example", "p@ss:w/rd%"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(
            user.encode(), password.encode()
        )
        return AuthResult(success=ok, handled=False)

    mailbox = smtp_server(authenticator=authenticate, auth_required=True, auth_require_tls=False)
    port = mailbox.url.rsplit(":", 1)[1]
    app = make_app(
        MAIL_URL=f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}",
        MAIL_FROM="Tienda <facturas@tienda.example>",
    )
    queue(
        app,
        subject="Su factura A-18",
        html="<p>Su factura</p>",
        attachments=[("A-18.pdf", "application/pdf", PDF), ("A-18.xml", "application/xml", XML)],
    )
    assert send_due(app) == 1

    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "facturas@tienda.example"
    assert envelope.rcpt_tos == ["cliente@example.com"]
    [message] = mailbox.messages()
    [row] = rows(app)
    assert message["Message-ID"] == row.message_id
    assert message["From"] == "Tienda <facturas@tienda.example>"
    assert message["Subject"] == "Su factura A-18"
    assert message["Date"] is not None
    assert message.get_body(("plain",)).get_content().strip() == "Adjuntamos su factura."
    attachments = {a.get_filename(): a.get_content() for a in message.iter_attachments()}
    assert attachments == {"A-18.pdf": PDF, "A-18.xml": XML}
    assert row.status == MailStatus.SENT


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_wrong_password_is_an_error_to_retry(make_app, smtp_server):
    mailbox = smtp_server(
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_required=True,
        auth_require_tls=False,
    )
    app = make_app(MAIL_URL=mailbox.url.replace("smtp://", "smtp://usuario:mala@"))
    queue(app)
    assert send_due(app) == 0
    [row] = rows(app)
    assert row.status == MailStatus.PENDING and row.attempts == 1
    assert "SMTPAuthenticationError" in row.last_error
    assert mailbox.envelopes == []


def test_a_silent_server_times_out(make_app):
    with socket.socket() as silent:  # accepts connections (backlog) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        app = make_app(MAIL_URL=f"smtp://127.0.0.1:{port}", MAIL_TIMEOUT_SECONDS=0.5)
        queue(app)
        started = time.monotonic()
        assert send_due(app) == 0
        assert time.monotonic() - started < 5
    [row] = rows(app)
    assert row.status == MailStatus.PENDING and "timed out" in row.last_error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file://instance/mail", FileTransport(ROOT / "instance" / "mail")),
        ("file:///var/spool/autofactura", FileTransport(Path("/var/spool/autofactura"))),
        (
            "smtp://facturas%40tienda.example:p%3Ass%2Fw@mail.example.com:2525",
            SmtpTransport(
                "mail.example.com", 2525, "plain", "facturas@tienda.example", "p:ss/w", 7
            ),
        ),
        ("smtp://mail.example.com", SmtpTransport("mail.example.com", 25, "plain", None, None, 7)),
        (
            "smtp+starttls://u:p@mail.example.com",
            SmtpTransport("mail.example.com", 587, "starttls", "u", "p", 7),
        ),
        (
            "smtp+ssl://mail.example.com",
            SmtpTransport("mail.example.com", 465, "ssl", None, None, 7),
        ),
    ],
)
def test_mail_url_names_the_transport(url, expected):
    assert transport_from_url(url, timeout=7) == expected


@pytest.mark.parametrize("url", ["ftp://mail.example.com", "mail.example.com", "smtp://"])
def test_worker_refuses_to_start_with_a_bad_mail_url(make_app, url):
    app = make_app(MAIL_URL=url)
    queue(app)
    result = app.test_cli_runner().invoke(args=["mail", "worker", "--once"])
    assert result.exit_code == 1
    assert "MAIL_URL" in result.output
    assert rows(app)[0].status == MailStatus.PENDING


# --- Retries and dead letters ---------------------------------------------------------------


def test_server_down_then_up_is_delivered_once_when_the_retry_is_due(make_app, smtp_server):
    port = free_port()
    app = make_app(MAIL_URL=f"smtp://127.0.0.1:{port}", MAIL_RETRY_SECONDS=30)
    queue(app)
    t0 = utcnow()

    assert send_due(app, t0) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (MailStatus.PENDING, 1)
    assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
    assert row.next_attempt_at == t0 + timedelta(seconds=30)

    mailbox = smtp_server(port=port)
    assert send_due(app, t0 + timedelta(seconds=10)) == 0  # the retry is not due yet
    assert mailbox.envelopes == []

    assert send_due(app, t0 + timedelta(seconds=31)) == 1
    assert len(mailbox.envelopes) == 1
    [row] = rows(app)
    assert row.status == MailStatus.SENT
    assert row.sent_at == t0 + timedelta(seconds=31)

    assert send_due(app, t0 + timedelta(hours=1)) == 0
    assert len(mailbox.envelopes) == 1


def test_dead_letter_after_max_attempts(make_app, smtp_server):
    port = free_port()
    app = make_app(MAIL_URL=f"smtp://127.0.0.1:{port}", MAIL_MAX_ATTEMPTS=3, MAIL_RETRY_SECONDS=10)
    [mail_id] = queue(app, subject="Factura que no llega")
    t0 = utcnow()

    assert send_due(app, t0) == 0
    assert rows(app)[0].next_attempt_at == t0 + timedelta(seconds=10)
    assert send_due(app, t0 + timedelta(seconds=10)) == 0
    assert rows(app)[0].next_attempt_at == t0 + timedelta(seconds=30)  # 10 s, then 20 s
    assert send_due(app, t0 + timedelta(seconds=30)) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (MailStatus.DEAD, 3)
    assert "refused" in row.last_error.lower()

    mailbox = smtp_server(port=port)
    assert send_due(app, t0 + timedelta(days=1)) == 0  # dead letters are not retried
    assert mailbox.envelopes == []

    status = app.test_cli_runner().invoke(args=["mail", "status"])
    assert status.exit_code == 0
    assert "pending  0" in status.output and "dead     1" in status.output
    assert f"#{mail_id} to cliente@example.com" in status.output
    assert row.last_error in status.output


def test_retry_delay_doubles_up_to_six_hours(make_app):
    app = make_app(MAIL_URL=f"smtp://127.0.0.1:{free_port()}", MAIL_RETRY_SECONDS=10_000)
    queue(app)
    now = utcnow()
    delays = []
    for _ in range(3):
        send_due(app, now)
        next_at = rows(app)[0].next_attempt_at
        delays.append((next_at - now).total_seconds())
        now = next_at
    assert delays == [10_000, 20_000, 6 * 3600]


# --- Workers: killed mid-run, concurrent, CLI ---------------------------------------------


def _start_worker(
    database_url: str, mail_url: str, log: Path, lease_seconds: float = 1
) -> subprocess.Popen:
    env = dict(
        os.environ,
        FLASK_APP="webapp.app",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key",
        MAIL_URL=mail_url,
        MAIL_LEASE_SECONDS=str(lease_seconds),
        PYTHONUNBUFFERED="1",
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "mail", "worker", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(condition, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_worker_killed_mid_run_loses_nothing(make_app, smtp_server, database_url, tmp_path):
    mailbox = smtp_server()
    mailbox.hold_after = 3  # the 4th message waits at the server: the worker is mid-batch
    app = make_app(MAIL_URL=mailbox.url)
    queue(app, 15)
    log = tmp_path / "worker.log"

    first = _start_worker(database_url, mailbox.url, log)
    try:
        _wait_for(mailbox.holding.is_set, "the worker to be sending its 4th message")
    finally:
        first.kill()  # SIGKILL: no chance to clean up
        first.wait()
        mailbox.release.set()  # the held message is refused: it was never accepted
    statuses = [m.status for m in rows(app)]
    assert statuses.count(MailStatus.SENT) == 3
    assert statuses.count(MailStatus.SENDING) == 7  # the rest of its batch, under its lease
    assert statuses.count(MailStatus.PENDING) == 5

    second = _start_worker(database_url, mailbox.url, log)
    try:
        _wait_for(lambda: all(m.status == MailStatus.SENT for m in rows(app)), "all sent")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(DEADLINE) == 0  # a clean exit on SIGTERM

    delivered = [m["Message-ID"] for m in mailbox.messages()]
    assert sorted(delivered) == sorted(m.message_id for m in rows(app))  # each exactly once
    output = log.read_text()
    assert "sent #" in output and "mail worker stopped" in output


def test_killed_after_the_server_accepted_it_goes_again_with_the_same_message_id(
    make_app, smtp_server, database_url, tmp_path
):
    """Delivery is at least once: the server accepted a message, the worker died before
    recording it. After the lease it is sent again, under the same Message-ID, so the
    receiving side can tell the copy."""
    mailbox = smtp_server()
    app = make_app(MAIL_URL=mailbox.url)
    [mail_id] = queue(app)
    # From the moment the server accepts the message, hold its row (a row lock on PostgreSQL,
    # the write lock on SQLite): the worker cannot record it sent before it is killed.
    engine = make_engine(database_url)
    hold = engine.connect()

    def hold_the_row(_envelope) -> None:
        mailbox.on_accept = None  # the first time only
        touch = update(MailMessage).where(MailMessage.id == mail_id)
        hold.execute(touch.values(attempts=MailMessage.attempts))

    mailbox.on_accept = hold_the_row

    worker = _start_worker(database_url, mailbox.url, tmp_path / "worker.log", lease_seconds=600)
    try:
        _wait_for(lambda: len(mailbox.envelopes) == 1, "the server to accept the message")
    finally:
        worker.kill()
        worker.wait()
        hold.rollback()
        hold.close()
        engine.dispose()
    [row] = rows(app)
    assert row.status == MailStatus.SENDING  # accepted by the server, not recorded

    assert send_due(app) == 0  # not while the dead worker's lease lasts
    after_lease = row.locked_until + timedelta(seconds=1)
    # (On PostgreSQL the dead worker's connection may hold the row a moment longer.)
    _wait_for(lambda: send_due(app, after_lease) == 1, "the message to be sent again")

    first, again = mailbox.messages()
    assert first["Message-ID"] == again["Message-ID"] == row.message_id
    assert rows(app)[0].status == MailStatus.SENT


def test_a_worker_whose_lease_ran_out_does_not_send_again(make_app, tmp_path):
    app = make_app(MAIL_LEASE_SECONDS=1)
    queue(app)
    t0 = utcnow()
    with app.app_context():  # a slow worker claims the message ...
        [stale] = claim(db.session, app.config, t0, set())
        assert stale.attachments == []  # loaded: all it needs to send
    # ... its lease runs out, another worker takes the message over and sends it ...
    assert send_due(app, t0 + timedelta(seconds=2)) == 1
    # ... and the slow worker, getting to it at last, leaves it alone.
    with app.app_context():
        late = deliver(db.session, transport_from_config(app.config), app.config, stale, t0)
    assert late is False
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert rows(app)[0].status == MailStatus.SENT


def test_two_workers_do_not_send_the_same_message(make_app, smtp_server):
    mailbox = smtp_server(delay=0.02)
    app = make_app(MAIL_URL=mailbox.url)
    queue(app, 30)

    # Hold each claim open a moment after its SELECT, so the two workers' claims overlap.
    @event.listens_for(app.extensions["db"].engine, "after_cursor_execute")
    def slow_claim(conn, cursor, statement, parameters, context, executemany):
        if "mail_message.next_attempt_at <=" in statement:
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
        thread.join(DEADLINE)

    delivered = [m["Message-ID"] for m in mailbox.messages()]
    assert sorted(delivered) == sorted(m.message_id for m in rows(app))  # each exactly once
    assert sum(counts) == 30 and min(counts) > 0  # both workers took part
    assert all(m.status == MailStatus.SENT for m in rows(app))


def test_send_test_command_queues_a_message_the_worker_delivers(make_app, smtp_server):
    mailbox = smtp_server()
    app = make_app(MAIL_URL=mailbox.url)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["mail", "send-test", "operador@example.com"])
    assert result.exit_code == 0, result.output
    [row] = rows(app)
    assert f"#{row.id}" in result.output and "flask mail worker" in result.output
    assert mailbox.envelopes == []  # only queued: the worker delivers it

    worker = runner.invoke(args=["mail", "worker", "--once"])
    assert worker.exit_code == 0, worker.output
    assert f"sent #{row.id} to operador@example.com" in worker.output
    [message] = mailbox.messages()
    assert message["Subject"] == "Autofactura: mensaje de prueba"
    assert message["To"] == "operador@example.com"
    assert "el envío de correo funciona" in message.get_body(("plain",)).get_content()


def test_send_test_command_refuses_a_bad_address(app):
    result = app.test_cli_runner().invoke(args=["mail", "send-test", "no-es-correo"])
    assert result.exit_code == 2
    assert "invalid email address" in result.output
    assert rows(app) == []
