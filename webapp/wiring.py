"""The app's edge of the Flask-free services: one Stamping per app, and the invoice's email
rendered from templates (the one thing the service cannot do without Flask)."""

from __future__ import annotations

from flask import Flask, current_app, has_app_context, render_template
from flask_babel import gettext as _

from webapp import crypto
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.extensions import db
from webapp.issuing import credits, retention
from webapp.mail import Rendered, queue_mail, register_renderer
from webapp.mail.outbox import SUBJECT_MAX
from webapp.models import Invoice, Issuer
from webapp.services.providers import Providers
from webapp.services.stamping import INVOICE_PDF, Stamping, filename, invoice_pdf


def init_app(app: Flask) -> None:
    crypto.current_cipher = lambda: crypto.cipher_from_config(current_app.config)
    providers = Providers(app.config, session=lambda: db.session)
    app.extensions["stamping"] = Stamping(providers, mail=mail_when_stamped)
    register_renderer(INVOICE_PDF, invoice_pdf)  # the email's PDF, made by the mail worker
    credits.set_low_credit_mailer(_low_credit_mailer(app))


def stamping() -> Stamping:
    """The current app's stamping service."""
    return current_app.extensions["stamping"]


class Problem(str):
    """What keeps an issuer from stamping, for its staff; `code` the readiness' code
    ("no_csd", "data_key", "no_credits", "licence_expired"), for the page's heading."""

    code: str = ""


def signing_problem(issuer: Issuer) -> Problem | None:
    """What keeps `issuer` from stamping now, for its staff (None: it can): its stamp
    credits or licence (and how to renew), or its CSD (.p12 in Ecuador)."""
    problem = stamping().readiness(issuer)
    if problem is None:
        return None
    text = Problem(_problem_text(issuer, problem))
    text.code = problem.code
    return text


def _problem_text(issuer: Issuer, problem) -> str:
    if problem.code == credits.NO_CREDITS:
        return _(
            "Sin timbres disponibles: genere una constancia de pago de un paquete de timbres "
            "en «Consultar Constancia de Pago», pague en el banco y suba su comprobante; en "
            "cuanto se confirme el pago se podrá facturar de nuevo. Mientras tanto sus clientes "
            "no pueden facturar; las facturas ya emitidas siguen disponibles."
        )
    if problem.code == credits.LICENCE_EXPIRED:
        expired = problem.expired_at.astimezone(MEXICO_CITY) if problem.expired_at else None
        day = expired.strftime("%d/%m/%Y") if expired else ""
        return _(
            "Su licencia venció el %(date)s y terminó el periodo de gracia. Genere la "
            "constancia de pago de la renovación en «Consultar Constancia de Pago», pague en "
            "el banco y suba su comprobante; en cuanto se confirme el pago se podrá facturar "
            "de nuevo. Mientras tanto sus clientes no pueden facturar; las facturas ya "
            "emitidas siguen disponibles.",
            date=day,
        )
    if issuer.country == "EC":
        if problem.code == "data_key":
            return _(
                "La firma electrónica (.p12) guardada no se puede descifrar con la DATA_KEY de "
                "este servidor. Restaure esa DATA_KEY o cargue la firma de nuevo en Ajustes del "
                "emisor. Mientras tanto no se puede facturar."
            )
        return _(
            "No hay una firma electrónica (.p12) que pueda firmar (%(detail)s). Cárguela en "
            "Ajustes del emisor. Mientras tanto no se puede facturar.",
            detail=problem.detail,
        )
    if problem.code == "data_key":
        return _(
            "El CSD guardado no se puede descifrar con la DATA_KEY de este servidor (¿cambió "
            "DATA_KEY?). Restaure la DATA_KEY con la que se guardó, o cargue el CSD de nuevo "
            "en Ajustes del emisor. Mientras tanto no se puede timbrar."
        )
    return _(
        "No hay un CSD que pueda firmar (%(detail)s). Cárguelo en Ajustes del emisor. "
        "Mientras tanto no se puede timbrar.",
        detail=problem.detail,
    )


def _low_credit_mailer(app: Flask):
    """The low-credit warning (webapp.issuing.credits), rendered from templates in this
    app's context when the caller has none (a worker, a script)."""

    def queue(session, issuer: Issuer, threshold: int, balance: int, to: list[str]) -> None:
        if has_app_context():
            _queue_low_credits(session, issuer, threshold, balance, to)
            return
        with app.app_context():
            _queue_low_credits(session, issuer, threshold, balance, to)

    return queue


def _queue_low_credits(session, issuer: Issuer, threshold: int, balance: int, to) -> None:
    context = {"issuer": issuer, "threshold": threshold, "balance": balance}
    queue_mail(
        session,
        to,
        _subject(render_template("platform/email/low_credits.subject.txt", **context)),
        render_template("platform/email/low_credits.body.txt", **context),
    )


def mail_when_stamped(session, invoice: Invoice) -> None:
    """Queue the invoice's email to its delivery address (in the commit of the stamp)."""
    if invoice.delivery_email:
        queue_invoice_mail(session, invoice, invoice.delivery_email)


def _subject(text: str) -> str:
    """One line of at most SUBJECT_MAX characters, whatever the issuer's name."""
    line = " ".join(text.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1].rstrip() + "…"


def queue_invoice_mail(session, invoice: Invoice, to: list[str] | str) -> None:
    """Queue the invoice's email with its XML and PDF, archived or not (committed by the
    caller). A PDF not rendered yet is left for the mail worker, which renders it at delivery
    and keeps it on the invoice (services.stamping.invoice_pdf): queueing renders nothing, so
    neither the stamp's commit nor "Enviar por correo" waits for it."""
    context = {"invoice": invoice, "sandbox": invoice.test_stamp}
    files = retention.files_of(session, invoice)
    pdf: bytes | Rendered | None = files.pdf
    if pdf is None and files.xml is not None:
        pdf = Rendered(INVOICE_PDF, invoice.id)
    queue_mail(
        session,
        to,
        _subject(render_template("invoicing/email/subject.txt", **context)),
        render_template("invoicing/email/body.txt", **context),
        attachments=[
            (filename(invoice, ext), mimetype, data)
            for ext, mimetype, data in (
                ("xml", "application/xml", files.xml),
                ("pdf", "application/pdf", pdf),
            )
            if data is not None
        ],
    )
