"""`flask sms ...` commands: the worker, a test message, the outbox status.

The SMS package's edge to Flask (the rest of it is Flask-free): the worker runs over the
app's database and settings here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import SmsMessage, SmsStatus
from webapp.sms.outbox import queue_sms
from webapp.sms.transport import transport_from_config
from webapp.sms.worker import Sessions, run_once, work

sms_cli = AppGroup("sms", help="The SMS outbox.")

# GSM-7 (no accented vowels): one message.
TEST_TEXT = "Autofactura: mensaje de prueba. Si le llega, los SMS funcionan."


def app_sessions(app: Flask) -> Sessions:
    """The worker's sessions over `app`: each one `db.session` in an app context of its own,
    closed with it."""

    @contextmanager
    def session() -> Iterator[Session]:
        with app.app_context():
            yield db.session

    return session


@sms_cli.command("worker")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,  # a verification code should not keep its reader waiting
    show_default=True,
    help="Seconds between looks at the outbox.",
)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def worker_command(interval: float, once: bool) -> None:
    """Deliver the queued text messages until stopped (SIGTERM or Ctrl-C)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        transport = transport_from_config(app.config)
    except ValueError as exc:
        raise click.ClickException(f"SMS is not configured correctly: {exc}") from None
    if once:
        sent = run_once(app_sessions(app), app.config, transport=transport)
        click.echo(f"{sent} SMS sent.")
        return
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        work(app_sessions(app), app.config, interval, stop, transport)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@sms_cli.command("send-test")
@click.argument("number")
def send_test_command(number: str) -> None:
    """Queue a test SMS to NUMBER (the worker delivers it)."""
    session = db.session
    try:
        message = queue_sms(session, number, TEST_TEXT)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None
    session.commit()
    click.echo(f"Queued test SMS #{message.id} to {message.to_number}.")
    click.echo(
        "The SMS worker delivers it: keep `flask sms worker` running (or run "
        "`flask sms worker --once`), then check with `flask sms status`."
    )


@sms_cli.command("status")
def status_command() -> None:
    """Messages per status, and the dead ones with their last error."""
    session = db.session
    counts = dict(
        session.execute(select(SmsMessage.status, func.count()).group_by(SmsMessage.status)).all()
    )
    for status in SmsStatus:
        click.echo(f"{status.value:<8} {counts.get(status, 0)}")
    dead = session.scalars(
        select(SmsMessage).where(SmsMessage.status == SmsStatus.DEAD).order_by(SmsMessage.id)
    ).all()
    if dead:
        click.echo("\nDead messages (not retried any more):")
        for message in dead:
            click.echo(
                f"#{message.id} to {message.to_number}, {message.attempts} attempt(s): "
                f"{message.last_error}"
            )
