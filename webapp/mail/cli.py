"""`flask mail ...` commands: the worker, a test message, the outbox status.

The mail package's edge to Flask (the rest of it is Flask-free): the worker runs over the
app's database and settings here.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.mail.outbox import queue_mail, validate_address
from webapp.mail.transport import transport_from_config
from webapp.mail.worker import Sessions, run_once, work
from webapp.models import MailMessage, MailStatus

log = logging.getLogger(__name__)

mail_cli = AppGroup("mail", help="The mail outbox.")

TEST_SUBJECT = "Autofactura: mensaje de prueba"
TEST_TEXT = """\
Hola:

Este es un mensaje de prueba de Autofactura ({base_url}).

Si lo está leyendo, el envío de correo funciona: el mensaje se guardó en la cola de salida
y el trabajador de correo (flask mail worker) lo entregó con la configuración de MAIL_URL.
Los clientes recibirán de la misma forma sus facturas (XML y PDF) por correo electrónico.

No es necesario responder a este mensaje.

Autofactura
"""


def app_sessions(app: Flask) -> Sessions:
    """The worker's sessions over `app`: each one `db.session` in an app context of its own,
    closed with it."""

    @contextmanager
    def session() -> Iterator[Session]:
        with app.app_context():
            yield db.session

    return session


def reconcile_chore(app: Flask):
    """The stamping service's reconcile, for the worker's chores (in an app context)."""

    def reconcile(session: Session) -> None:
        counts = app.extensions["stamping"].reconcile(session, datetime.now(UTC))
        if any(counts.values()):
            log.info("reconcile: %s", counts)

    return reconcile


@mail_cli.command("worker")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between looks at the outbox.",
)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--reconcile-every",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds between reconciles of invoices left on their way to the PAC (0: never).",
)
def worker_command(interval: float, once: bool, reconcile_every: float) -> None:
    """Deliver the queued emails until stopped (SIGTERM or Ctrl-C), and every
    --reconcile-every seconds finish or release the invoices left on their way to the PAC."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        transport = transport_from_config(app.config)
        validate_address(parseaddr(app.config["MAIL_FROM"])[1])
    except ValueError as exc:
        raise click.ClickException(f"mail is not configured correctly: {exc}") from None

    if once:
        sent = run_once(app_sessions(app), app.config, transport=transport)
        click.echo(f"{sent} message(s) sent.")
        return
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        chores = [(reconcile_every, reconcile_chore(app))] if reconcile_every > 0 else []
        work(app_sessions(app), app.config, interval, stop, transport, chores)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@mail_cli.command("send-test")
@click.argument("address")
def send_test_command(address: str) -> None:
    """Queue a test email to ADDRESS (the worker delivers it)."""
    session = db.session
    try:
        message = queue_mail(
            session,
            address,
            TEST_SUBJECT,
            TEST_TEXT.format(base_url=current_app.config["BASE_URL"]),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
    session.commit()
    click.echo(f"Queued test message #{message.id} to {message.to_addrs}.")
    click.echo(
        "The mail worker delivers it: keep `flask mail worker` running (or run "
        "`flask mail worker --once`), then check with `flask mail status`."
    )


@mail_cli.command("status")
def status_command() -> None:
    """Messages per status, and the dead ones with their last error."""
    session = db.session
    counts = dict(
        session.execute(select(MailMessage.status, func.count()).group_by(MailMessage.status)).all()
    )
    for status in MailStatus:
        click.echo(f"{status.value:<8} {counts.get(status, 0)}")
    dead = session.scalars(
        select(MailMessage).where(MailMessage.status == MailStatus.DEAD).order_by(MailMessage.id)
    ).all()
    if dead:
        click.echo("\nDead messages (not retried any more):")
        for message in dead:
            click.echo(
                f"#{message.id} to {message.to_addrs} «{message.subject}», "
                f"{message.attempts} attempts: {message.last_error}"
            )
