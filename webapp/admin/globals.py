"""Back office: the factura global (/admin/factura-global).

Issuer admins and the operator choose a branch, a periodicity and a day of the period; the
page previews the period's open tickets (GET, so it works without JavaScript and can be
bookmarked) and "Timbrar factura global" stamps it (POST). The preview carries the request's
idempotency key, so a double submit gives the same invoice. Globals flagged because a ticket
was later invoiced on its own are corrected with one button: cancel (motive 04) and reissue.
The domain is webapp.issuing.global_invoice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import abort, current_app, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.cfdi.pac import PacError
from webapp.extensions import db
from webapp.htmx import render
from webapp.issuing import global_invoice as gi
from webapp.issuing import issue
from webapp.issuing.retention import files_of
from webapp.models import Invoice, StaffRole
from webapp.services.stamping import filename, files_with_pdf
from webapp.wiring import signing_problem, stamping

ADMIN = StaffRole.ISSUER_ADMIN
LIST_LIMIT = 100

PERIODICITY_NAMES = {
    gi.DAILY: _l("Diaria"),
    gi.WEEKLY: _l("Semanal"),
    gi.FORTNIGHTLY: _l("Quincenal"),
    gi.MONTHLY: _l("Mensual"),
    gi.BIMONTHLY: _l("Bimestral"),
}

ERRORS = {
    "no_credits": _l("Sin timbres disponibles: genere una constancia de pago en «Renovar»."),
    "licence_expired": _l("La licencia venció: genere una constancia de pago en «Renovar»."),
    "not_over": _l(
        "Ese periodo aún no termina: la factura global se emite cuando el periodo concluye."
    ),
    "no_tickets": _l("No hay tickets sin facturar de esta sucursal en ese periodo."),
    "bimonthly_needs_rif": _l(
        "La periodicidad bimestral sólo la usa el Régimen de Incorporación Fiscal (621)."
    ),
    "too_old": _l("El SAT sólo admite periodos del año en curso o del año anterior."),
    "not_to_correct": _l("Esta factura global no necesita corrección."),
    "cancel_refused": _l("No se pudo cancelar la factura global:"),
    "periodicity": _l("Elija una periodicidad de la lista."),
}
UNKNOWN_ERROR = _l("No se pudo hacer la factura global así; revise los datos.")


def error_message(problem: gi.GlobalError) -> str:
    """What the page says about a GlobalError, in the reader's language; `detail` (the PAC's
    own words, when there are any) follows untranslated."""
    message = str(ERRORS.get(problem.code, UNKNOWN_ERROR))
    if problem.code == "cancel_refused" and problem.detail:
        message = f"{message} {problem.detail}"
    return message


class GlobalForm(FlaskForm):
    # Out of scope is a 404 (scope.branch), not a form error. The selects always hold a
    # choice, so they carry no `required` (HTML wants an empty first option then).
    branch = SelectField(
        _l("Sucursal"),
        coerce=int,
        validate_choice=False,
        validators=[InputRequired()],
        render_kw={"required": False},
    )
    periodicity = SelectField(
        _l("Periodicidad"),
        choices=[SelectChoice(k, v) for k, v in PERIODICITY_NAMES.items()],
        validators=[InputRequired()],
        render_kw={"required": False},
    )
    day = DateField(
        _l("Un día del periodo"),
        validators=[InputRequired(message=_l("Escriba una fecha del periodo."))],
    )
    key = HiddenField()

    def period(self) -> gi.Period:
        return gi.period_of(self.periodicity.data, self.day.data)


def _now() -> datetime:
    return datetime.now(UTC)


def _form(query=None) -> GlobalForm:
    """The form on the POSTed data, or on `query` (the preview's GET, without CSRF)."""
    issuer = scope.issuer()
    form = GlobalForm(query, meta={"csrf": False}) if query is not None else GlobalForm()
    form.branch.choices = [
        SelectChoice(b.id, f"{b.code} · {b.name} (C.P. {b.cp})")
        for b in db.session.scalars(scope.branches_query())
    ]
    if not form.periodicity.data or form.periodicity.data == "None":
        form.periodicity.data = issuer.global_periodicity
    if query is None and request.method == "GET":  # yesterday: the last period to be over
        form.day.data = gi.local_today(_now()) - timedelta(days=1)
    return form


def _key_for(form: GlobalForm, period: gi.Period) -> str:
    """The key sent with the preview, if it is one of this branch and period's; else a new
    one."""
    base = period.key(form.branch.data)
    sent = (form.key.data or "").strip()
    if re.fullmatch(re.escape(base) + r"(:\d{1,4})?", sent):
        return sent
    return gi.next_key(db.session, form.branch.data, period)


def _page(form: GlobalForm, status: int = 200, preview=None, error: str | None = None, **extra):
    query = scope.invoices_query().where(Invoice.is_global)
    invoices = db.session.scalars(
        query.order_by(Invoice.fecha.desc(), Invoice.id.desc()).limit(LIST_LIMIT)
    ).all()
    to_correct = db.session.scalars(
        gi.needing_correction(query).order_by(Invoice.fecha, Invoice.id)
    ).all()
    return render(
        "admin/global_invoices.html",
        "content",
        status,
        form=form,
        preview=preview,
        error=error,
        invoices=invoices,
        to_correct=to_correct,
        period_of=gi.period_of_invoice,
        periodicity_names=PERIODICITY_NAMES,
        notice=request.args.get("aviso"),
        **extra,
    )


@bp.get("/factura-global")
@staff_required(ADMIN)
def global_invoices():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    if "day" not in request.args:
        return _page(_form())
    form = _form(request.args)
    if not form.validate():
        return _page(form, 422)
    branch = scope.branch(form.branch.data)
    period = form.period()
    preview = gi.preview(db.session, branch, period)
    error = None
    try:
        gi.check_period(branch.issuer, period, _now())
    except gi.GlobalError as problem:
        error = error_message(problem)
    if error is None and preview.tickets == 0:
        error = ERRORS["no_tickets"]
    form.key.data = gi.next_key(db.session, branch.id, period)
    return _page(form, preview=preview, error=error, branch=branch)


@bp.post("/factura-global")
@staff_required(ADMIN)
def global_stamp():
    form = _form()
    if not form.validate_on_submit():
        return _page(form, 422)
    branch = scope.branch(form.branch.data)
    issuer = branch.issuer
    period = form.period()
    if problem := signing_problem(issuer):
        return _page(form, 503, error=problem, branch=branch)
    try:
        invoice = gi.issue_global(
            db.session,
            branch,
            period,
            _now(),
            stamping=stamping(),
            key=_key_for(form, period),
        )
    except gi.GlobalError as problem:
        db.session.rollback()
        preview = gi.preview(db.session, branch, period)
        return _page(form, 422, preview=preview, error=error_message(problem), branch=branch)
    except issue.StampingFailed as failure:
        current_app.logger.warning("global stamping refused: %s", failure.error)
        return _page(
            _form(),
            502,
            error=_("El PAC rechazó la factura global: %(error)s", error=failure.error.message),
        )
    except issue.TicketsTaken:
        db.session.rollback()
        return _page(
            form, 409, error=_("Otra factura tomó tickets del periodo. Revise y vuelva a intentar.")
        )
    except PacError:  # no answer: reconcile finishes it; the list shows it in process
        return redirect(url_for("admin.global_invoices", aviso="en-proceso"), 303)
    if invoice.status is not issue.InvoiceStatus.STAMPED:
        return redirect(url_for("admin.global_invoices", aviso="en-proceso"), 303)
    return redirect(url_for("admin.global_invoices", aviso="timbrada"), 303)


@bp.post("/factura-global/<public_id>/corregir")
@staff_required(ADMIN)
def global_correct(public_id: str):
    invoice = _global(public_id)
    if problem := signing_problem(invoice.issuer):
        return _page(_form(), 503, error=problem)
    try:
        new = gi.correct(
            db.session,
            invoice,
            _now(),
            stamping=stamping(),
            request_cancel=_request_cancel,
        )
    except gi.GlobalError as problem:
        db.session.rollback()
        return _page(_form(), 422, error=error_message(problem))
    except issue.StampingFailed as failure:
        return _page(
            _form(),
            502,
            error=_(
                "Se canceló la factura global, pero el PAC rechazó la nueva: %(error)s",
                error=failure.error.message,
            ),
        )
    except PacError:  # the reissue was not answered: reconcile finishes it
        return redirect(url_for("admin.global_invoices", aviso="en-proceso"), 303)
    notice = "corregida" if new is not None else "cancelada"
    return redirect(url_for("admin.global_invoices", aviso=notice), 303)


def _request_cancel(session, invoice, motive, pac, now):
    from webapp.issuing.cancel import request_cancel

    member = current_staff()
    return request_cancel(session, invoice, motive, pac, now, staff_id=member and member.id)


@bp.get("/factura-global/<public_id>.<any(xml, pdf):ext>")
@staff_required(ADMIN)
def global_file(public_id: str, ext: str):
    invoice = _global(public_id)
    if ext == "xml":
        data = files_of(db.session, invoice).xml
    else:  # rendered on the first download, then kept
        data = files_with_pdf(db.session, invoice).pdf
    if data is None or invoice.uuid is None:
        abort(404)
    response = make_response(data)
    response.headers["Content-Type"] = "application/xml" if ext == "xml" else "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename(invoice, ext)}"'
    return response


def _global(public_id: str) -> Invoice:
    invoice = scope.invoice(public_id)
    if not invoice.is_global:
        abort(404)
    return invoice
