"""`flask mail ...` commands: the worker, a test message, the outbox status."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from email.utils import parseaddr

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.mail.outbox import queue_mail, validate_address
from webapp.mail.transport import transport_from_config
from webapp.mail.worker import run_once, work
from webapp.models import MailMessage, MailStatus

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


@mail_cli.command("worker")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between looks at the outbox.",
)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def worker_command(interval: float, once: bool) -> None:
    """Deliver the queued emails until stopped (SIGTERM or Ctrl-C)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        transport = transport_from_config(app.config)
        validate_address(parseaddr(app.config["MAIL_FROM"])[1])
    except ValueError as exc:
        raise click.ClickException(f"mail is not configured correctly: {exc}") from None

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("webapp.mail")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        if once:
            sent = run_once(app, transport=transport)
            click.echo(f"{sent} message(s) sent.")
            return
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            work(app, interval, stop, transport=transport)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


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
