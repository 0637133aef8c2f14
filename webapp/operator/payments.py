"""Payments to confirm (/operador/pagos, seed 003 PASO 8): the slips waiting for the
operator (pending, or with the merchant's proof), newest first, each with its proof to
download and **Confirmar pago**; a slip's page with its lines and where its CFDI stands
(**Reintentar factura** when it is not stamped); and the bank statement's CSV matched by
reference and amount (/operador/pagos/estado-de-cuenta) with a row-by-row report.

Confirming is webapp.platform.confirm: the products applied once, the "pago confirmado" email
to the merchant's admins (rendered here, queued in the confirmation's commit) and the
platform's CFDI through the one stamping road.

The bank statement's report is the answer to its POST (it is not stored): posting the same
file again confirms nothing twice (its rows read "ya confirmada").
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, abort, current_app, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import FileField

from webapp.admin.auth import current_staff, staff_required
from webapp.admin.imports import read_upload
from webapp.extensions import db
from webapp.htmx import is_htmx, redirect_any, render
from webapp.mail import queue_mail
from webapp.mail.outbox import SUBJECT_MAX
from webapp.models import Invoice, PaymentSlip, SlipStatus, StaffRole
from webapp.operator import bp
from webapp.platform import bank_statement, confirm, proofs
from webapp.platform.confirm import CfdiState
from webapp.wiring import stamping

operator_only = staff_required(StaffRole.OPERATOR)

LIST_LIMIT = 200
RECENT = 20
STATUS_LABELS = {
    SlipStatus.PENDING: _l("Pendiente de pago"),
    SlipStatus.PROOF: _l("Con comprobante"),
    SlipStatus.CONFIRMED: _l("Confirmado"),
    SlipStatus.CANCELLED: _l("Cancelado"),
}
NOTICES = {
    "confirmado": _l("Pago confirmado: se aplicaron los productos."),
    "ya": _l("Este pago ya estaba confirmado; no se aplicó otra vez."),
    "factura": _l("Se intentó de nuevo la factura."),
}
OUTCOME_LABELS = {
    bank_statement.MATCHED: _l("Confirmado"),
    bank_statement.AMOUNT_DIFFERS: _l("Monto distinto"),
    bank_statement.UNKNOWN: _l("Referencia desconocida"),
    bank_statement.ALREADY: _l("Ya confirmada"),
    bank_statement.CANCELLED: _l("Constancia cancelada"),
    bank_statement.INVALID: _l("Fila ilegible"),
}
PROOF_TYPES = {"application/pdf", "image/png", "image/jpeg"}


class StatementForm(FlaskForm):
    file = FileField(_l("Estado de cuenta (CSV)"), render_kw={"accept": ".csv,text/csv"})


def proofs_directory() -> str:
    """Where the proofs of payment are stored: the PROOFS_DIR setting."""
    return current_app.config["PROOFS_DIR"]


def _slip(public_id: str) -> PaymentSlip:
    found = db.session.scalar(
        select(PaymentSlip)
        .where(PaymentSlip.public_id == public_id)
        .options(selectinload(PaymentSlip.lines), selectinload(PaymentSlip.issuer))
    )
    if found is None:
        abort(404)
    return found


def _subject(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1].rstrip() + "…"


def mail_confirmed(session, slip: PaymentSlip, emails: list[str]) -> None:
    """The "pago confirmado" email to the merchant's admins (queued in the confirmation's
    commit): what was applied, the licence's expiry and the stamps available."""
    context = {
        "slip": slip,
        "issuer": slip.issuer,
        "lines": [line for line in slip.lines if line.included],
        "admin_url": current_app.config.get("BASE_URL", "").rstrip("/") + url_for("admin.home"),
    }
    queue_mail(
        session,
        emails,
        _subject(render_template("platform/email/payment_confirmed.subject.txt", **context)),
        render_template("platform/email/payment_confirmed.txt", **context),
    )


def _confirm_one(slip_id: int) -> bool:
    member = current_staff()
    applied, _outcome = confirm.confirm(
        db.session,
        stamping(),
        slip_id,
        member.id if member else None,
        datetime.now(UTC),
        notify=mail_confirmed,
    )
    return applied


def cfdi_message(outcome: confirm.InvoiceOutcome) -> str:
    """Where the platform's CFDI of a confirmed payment stands, for the operator."""
    reason = outcome.reason
    if outcome.state is CfdiState.STAMPED:
        return _("Factura de la plataforma timbrada y enviada al comercio.")
    if outcome.state is CfdiState.PENDING:
        return _(
            "Factura pendiente: el proveedor de timbrado no ha respondido. Se resuelve sola; "
            "puede reintentar."
        )
    if outcome.state is CfdiState.FAILED:
        return _(
            "Factura pendiente: el proveedor de timbrado la rechazó (%(reason)s).", reason=reason
        )
    if outcome.state is CfdiState.NOT_CONFIGURED:
        return _(
            "Factura pendiente: no hay emisor de la plataforma. Elíjalo en Ajustes y reintente."
        )
    if outcome.state is CfdiState.UNAVAILABLE:
        return _(
            "Factura pendiente: el emisor de la plataforma no puede timbrar (%(reason)s).",
            reason=reason,
        )
    if outcome.state is CfdiState.NOT_APPLICABLE:
        return _(
            "Sin factura automática: el comercio no es de México, o es el propio emisor de la "
            "plataforma."
        )
    return _("Factura pendiente: aún no se ha intentado.")


def _retryable(outcome: confirm.InvoiceOutcome) -> bool:
    return outcome.state not in (CfdiState.STAMPED, CfdiState.NOT_APPLICABLE)


@bp.get("/pagos")
@operator_only
def payments():
    waiting = db.session.scalars(
        select(PaymentSlip)
        .where(PaymentSlip.status.in_(confirm.CONFIRMABLE))
        .options(selectinload(PaymentSlip.issuer))
        .order_by(PaymentSlip.created_at.desc(), PaymentSlip.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    without_cfdi = db.session.scalars(
        select(PaymentSlip)
        .where(PaymentSlip.status == SlipStatus.CONFIRMED, PaymentSlip.invoice_id.is_(None))
        .options(selectinload(PaymentSlip.issuer))
        .order_by(PaymentSlip.confirmed_at.desc(), PaymentSlip.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    service = stamping()
    pending_cfdi = [
        (slip, cfdi_message(confirm.cfdi_status(db.session, service, slip)))
        for slip in without_cfdi
    ]
    recent = db.session.scalars(
        select(PaymentSlip)
        .where(PaymentSlip.status == SlipStatus.CONFIRMED, PaymentSlip.invoice_id.is_not(None))
        .options(selectinload(PaymentSlip.issuer))
        .order_by(PaymentSlip.confirmed_at.desc(), PaymentSlip.id.desc())
        .limit(RECENT)
    ).all()
    return render(
        "operator/payments.html",
        "content",
        waiting=waiting,
        pending_cfdi=pending_cfdi,
        recent=recent,
        status_labels=STATUS_LABELS,
    )


@bp.get("/pagos/<public_id>")
@operator_only
def payment(public_id: str):
    slip = _slip(public_id)
    outcome = confirm.cfdi_status(db.session, stamping(), slip)
    invoice = db.session.get(Invoice, outcome.invoice_id) if outcome.invoice_id else None
    return render(
        "operator/payments_detail.html",
        "content",
        slip=slip,
        status_labels=STATUS_LABELS,
        confirmable=slip.status in confirm.CONFIRMABLE,
        cfdi=outcome,
        cfdi_text=cfdi_message(outcome) if slip.status is SlipStatus.CONFIRMED else "",
        retryable=slip.status is SlipStatus.CONFIRMED and _retryable(outcome),
        invoice=invoice if outcome.state is CfdiState.STAMPED else None,
        notice=NOTICES.get(request.args.get("hecho", "")),
    )


@bp.route("/pagos/<public_id>/confirmar", methods=["GET", "POST"])
@operator_only
def payment_confirm(public_id: str):
    """Confirmar pago: a page (or, to htmx, the dialog) asking to confirm; its POST applies
    the products once and issues the platform's CFDI."""
    slip = _slip(public_id)
    if request.method == "GET":
        if slip.status not in confirm.CONFIRMABLE:
            return redirect_any(url_for("operator.payment", public_id=public_id))
        return render(
            "operator/payments_confirm.html",
            "dialog",
            slip=slip,
            in_dialog=is_htmx(),
        )
    if not FlaskForm().validate_on_submit():  # CSRF
        abort(400)
    try:
        applied = _confirm_one(slip.id)
    except confirm.NotConfirmable:  # cancelled meanwhile: its page says so
        db.session.rollback()
        return redirect_any(url_for("operator.payment", public_id=public_id))
    return redirect_any(
        url_for("operator.payment", public_id=public_id, hecho="confirmado" if applied else "ya")
    )


@bp.post("/pagos/<public_id>/factura")
@operator_only
def payment_invoice(public_id: str):
    """Reintentar factura: the platform's CFDI of a confirmed payment, stamped again."""
    slip = _slip(public_id)
    if not FlaskForm().validate_on_submit():  # CSRF
        abort(400)
    if slip.status is not SlipStatus.CONFIRMED:
        abort(409)
    confirm.invoice(db.session, stamping(), slip.id, datetime.now(UTC))
    return redirect_any(url_for("operator.payment", public_id=public_id, hecho="factura"))


@bp.get("/pagos/<public_id>/comprobante")
@operator_only
def payment_proof(public_id: str):
    """The merchant's proof of payment, from outside the web root, as a download."""
    slip = _slip(public_id)
    if not slip.proof_name:
        abort(404)
    path = proofs.path_of(proofs_directory(), slip.proof_name)
    if path is None:
        abort(404)
    mime = slip.proof_type if slip.proof_type in PROOF_TYPES else "application/octet-stream"
    ext = proofs.EXTENSIONS.get(mime, "bin")
    response = send_file(
        path,
        mimetype=mime,
        as_attachment=True,
        download_name=f"comprobante-{slip.reference}.{ext}",
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _statement_page(form: StatementForm, status: int = 200, report=None):
    return render(
        "operator/payments_statement.html",
        "content",
        status=status,
        form=form,
        report=report,
        columns=bank_statement.COLUMN_DOCS,
        outcome_labels=OUTCOME_LABELS,
        max_mb=2,
    )


@bp.route("/pagos/estado-de-cuenta", methods=["GET", "POST"])
@operator_only
def payments_statement():
    """The bank statement's CSV: each row matched by reference and amount."""
    form = StatementForm()
    if request.method == "GET":
        return _statement_page(form)
    if not form.validate_on_submit():  # a CSRF failure: the message next to the field
        form.file.errors = list(form.errors.get("csrf_token", [])) or [_("Elija un archivo CSV.")]
        return _statement_page(form, 422)
    error, data = read_upload(request.files.get(form.file.name))
    if error is None:
        try:
            report = bank_statement.match(db.session, data, confirm_one=_confirm_one)
        except bank_statement.CsvError as exc:
            db.session.rollback()
            error = _(exc.message, **exc.params)
        else:
            for row in report.rows:
                row.message = _(row.note, **row.params) if row.note else ""
            return _statement_page(StatementForm(formdata=None), report=report)
    form.file.errors = [error]
    return _statement_page(form, 422)


@bp.get("/pagos/estado-de-cuenta/ejemplo.csv")
@operator_only
def payments_statement_sample():
    return Response(
        "\ufeff" + bank_statement.sample_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="estado-de-cuenta-ejemplo.csv"'},
    )
