"""The issuer's invoices (/admin/facturas): the customer panel's list and filters over the
issuer's scope (branch staff: their branch), the detail page, downloads, resending, and
cancellation through the PAC (issuer admins only).

Every invoice is reached through `scope.invoice`, so another issuer's is a 404.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from flask import Response, abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SearchField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.invoicing.forms import EmailForm
from webapp.issuing import cancel, replace, retention
from webapp.models import CancelStatus, Invoice, InvoiceStatus, StaffRole, Ticket, invoice_ticket
from webapp.panel import query
from webapp.panel.forms import FilterForm
from webapp.panel.listing import cancel_state, list_response, state_of
from webapp.services.stamping import filename, files_with_pdf
from webapp.wiring import queue_invoice_mail, stamping

ADMIN = StaffRole.ISSUER_ADMIN
FILTERS = ("q", "desde", "hasta", "rfc", "sucursal", "estado", "total_min", "total_max")
NOTICES = {
    "enviada": _l("Enviamos la factura por correo. Puede tardar unos minutos en llegar."),
    "cancelada": _l("La factura quedó cancelada ante el SAT."),
    "en_proceso": _l(
        "Solicitud enviada: la cancelación está en proceso hasta que el receptor la acepte "
        "o la rechace (tiene tres días hábiles)."
    ),
    "rechazada": _l("El receptor rechazó la cancelación: la factura sigue vigente."),
    "sin_cambio": _l("El receptor aún no responde: la cancelación sigue en proceso."),
    "sin_respuesta": _l(
        "El PAC no respondió: la solicitud queda en proceso. Use «Actualizar estado» más tarde."
    ),
    "sustituye_cancelada": _l(
        "Emitimos esta factura en sustitución de la anterior, que quedó cancelada con el motivo 01."
    ),
    "sustituye_en_proceso": _l(
        "Emitimos esta factura en sustitución de la anterior. La cancelación de la anterior "
        "(motivo 01) está en proceso hasta que el receptor la acepte."
    ),
    "sin_cancelar": _l(
        "Emitimos la factura de sustitución, pero el PAC no canceló esta (vea el historial). "
        "Pida la cancelación otra vez: el formulario ya lleva el motivo 01 y su UUID."
    ),
    "sustitucion_en_timbrado": _l(
        "La factura de sustitución se está timbrando; vuelva en unos minutos para cancelar esta."
    ),
}
MOTIVE_LABELS = {
    "01": _l("01 · Comprobante emitido con errores con relación"),
    "02": _l("02 · Comprobante emitido con errores sin relación"),
    "03": _l("03 · No se llevó a cabo la operación"),
    "04": _l("04 · Operación nominativa relacionada en una factura global"),
}
CANCEL_STATES = {
    CancelStatus.PENDING: _l("cancelación en proceso"),
    CancelStatus.CANCELLED: _l("cancelada"),
    CancelStatus.REJECTED: _l("cancelación rechazada"),
    None: _l("rechazada por el PAC"),
}


def _upper_strip(value):
    return value.strip().upper() if isinstance(value, str) else value


class AdminFilterForm(FilterForm):
    """The panel's filters, with the receptor's RFC instead of the issuer."""

    emisor = None  # one issuer: its own
    q = SearchField(
        _l("Buscar"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"maxlength": 60, "placeholder": _l("UUID o folio")},
    )
    estado = SelectField(
        _l("Estado"),
        choices=[
            SelectChoice("", _l("Todos")),
            SelectChoice("vigente", _l("Vigente")),
            SelectChoice("en_proceso", _l("Cancelación en proceso")),
            SelectChoice("cancelada", _l("Cancelada")),
            SelectChoice("archivada", _l("Archivada")),
        ],
        default="",
    )
    rfc = StringField(
        _l("RFC del receptor"),
        filters=[_upper_strip],
        render_kw={"maxlength": 13, "autocapitalize": "characters"},
    )

    def __init__(self, branches, **kwargs):
        FlaskForm.__init__(self, **kwargs)
        self.issuers = {}
        self.branches = {str(b.id): b for b in branches}
        self.sucursal.choices = [SelectChoice("", _l("Todas"))] + [
            SelectChoice(key, f"{b.code} · {b.name}") for key, b in self.branches.items()
        ]

    def validate_rfc(self, field) -> None:
        value = field.data or ""
        if value and not (12 <= len(value) <= 13 and value.isalnum()):
            raise ValidationError(_l("Escriba el RFC completo (12 o 13 caracteres)."))

    def filters(self) -> query.Filters:
        return query.Filters(
            desde=self.desde.data,
            hasta=self.hasta.data,
            branch_id=int(self.sucursal.data) if self.sucursal.data else None,
            estado=self.estado.data or None,
            total_min=self.total_min.data,
            total_max=self.total_max.data,
            q=self.q.data or "",
            orden=self.orden.data or "-fecha",
            receptor_rfc=self.rfc.data or None,
        )


class CancelForm(FlaskForm):
    motive = SelectField(
        _l("Motivo de cancelación"),
        choices=[SelectChoice("", _l("Elija un motivo"))]
        + [SelectChoice(value, label) for value, label in MOTIVE_LABELS.items()],
        default="",
    )
    replacement_uuid = StringField(
        _l("UUID de la factura que sustituye a esta"),
        filters=[_upper_strip],
        render_kw={"maxlength": 36, "autocomplete": "off", "spellcheck": "false"},
    )
    confirm = BooleanField(_l("Confirmo que quiero cancelar esta factura ante el SAT"))

    def validate_motive(self, field) -> None:
        if field.data not in MOTIVE_LABELS:
            raise ValidationError(_l("Elija un motivo de cancelación de la lista."))

    def validate_confirm(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Marque la casilla para confirmar la cancelación."))


def _scope() -> query.Scope:
    return query.Scope.issuer(scope.issuer().id, scope.branch_ids())


def _can_cancel() -> bool:
    member = current_staff()
    return member is not None and member.role in (StaffRole.OPERATOR, ADMIN)


@bp.get("/facturas")
@staff_required()
def invoices():
    """The issuer's invoices: the full page, its results (filters changed) or more rows."""
    branches = db.session.scalars(scope.branches_query()).all()
    form = AdminFilterForm(branches, formdata=request.args)
    valid = form.validate()
    page = query.page(db.session, _scope(), form.filters(), form.cursor()) if valid else None
    pending = db.session.scalar(
        scope.invoices_query()
        .with_only_columns(Invoice.id)
        .where(Invoice.cancel_status == CancelStatus.PENDING)
        .limit(1)
    )
    return list_response(
        "admin/invoices.html",
        "admin.invoices",
        FILTERS,
        form,
        page,
        200 if valid or is_htmx() else 400,
        admin_list=True,
        any_pending=pending is not None and _can_cancel(),
        notice=NOTICES.get(request.args.get("aviso", "")),
        outcome=request.args.get("resultado", ""),
    )


@bp.post("/facturas/actualizar")
@staff_required(ADMIN)
def invoices_refresh():
    """Ask the PAC about every pending cancellation of the issuer."""
    outcome = cancel.refresh_pending(
        db.session, scope.invoices_query(), stamping().pac_for(scope.issuer()), datetime.now(UTC)
    )
    summary = "-".join(str(outcome[k]) for k in ("cancelled", "rejected", "pending", "error"))
    return redirect(url_for(".invoices", resultado=summary), 303)


def _tickets(invoice: Invoice) -> list[tuple[Ticket, bool]]:
    """The invoice's tickets and whether it still holds each one."""
    return [
        (ticket, active)
        for ticket, active in db.session.execute(
            select(Ticket, invoice_ticket.c.active)
            .join(invoice_ticket, invoice_ticket.c.ticket_id == Ticket.id)
            .where(invoice_ticket.c.invoice_id == invoice.id)
            .order_by(Ticket.sold_at, Ticket.id)
        )
    ]


def _detail(invoice: Invoice, form: CancelForm | None = None, status: int = 200, error=None):
    replacement = replace.replacement_of(db.session, invoice)
    if form is None:
        form = CancelForm(formdata=None)
        if replacement is not None and replacement.status is InvoiceStatus.STAMPED:
            form.motive.data, form.replacement_uuid.data = "01", replacement.uuid
    url = url_for(".invoice_cancel", public_id=invoice.public_id)
    form.motive.render_kw = {  # the replacement's field comes and goes with motive 01
        "hx-get": url,
        "hx-trigger": "change",
        "hx-target": "#cancelar",
        "hx-swap": "outerHTML",
        "hx-include": "closest form",
        "hx-params": "motive,replacement_uuid",
    }
    return render(
        "admin/invoices_detail.html",
        "cancel_form",
        status,
        invoice=invoice,
        state=state_of(invoice),
        cancel_note=cancel_state(invoice),
        tickets=_tickets(invoice),
        history=cancel.history_of(db.session, invoice),
        has_files=retention.files_of(db.session, invoice).xml is not None,
        can_cancel=_can_cancel(),
        sandbox=isinstance(stamping().pac_for(invoice.issuer), SandboxPac),
        cancellable=invoice.status.value == "stamped"
        and invoice.cancel_status is not CancelStatus.PENDING,
        form=form,
        error=error,
        replacement=replacement,
        replaceable=_replaceable(invoice),
        motives=MOTIVE_LABELS,
        cancel_states=CANCEL_STATES,
        notice=NOTICES.get(request.args.get("aviso", "")),
    )


def _replaceable(invoice: Invoice) -> bool:
    try:
        replace.check(invoice)
    except replace.ReplaceError:
        return False
    return True


@bp.get("/facturas/<public_id>")
@staff_required()
def invoice(public_id: str):
    return _detail(scope.invoice(public_id))


@bp.get("/facturas/<public_id>/factura.<any(xml, pdf):ext>")
@staff_required()
def invoice_download(public_id: str, ext: str):
    """The files exactly as stamped (from the archive when moved there)."""
    found = scope.invoice(public_id)
    if ext == "xml":
        body = retention.files_of(db.session, found).xml
    else:  # rendered on the first download, then kept
        body = files_with_pdf(db.session, found).pdf
    if body is None:
        abort(404, description=_("Esta factura no tiene archivos (es un dato de demostración)."))
    response = Response(body, mimetype="application/xml" if ext == "xml" else "application/pdf")
    name = filename(found, ext)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/facturas/<public_id>/reenviar", methods=["GET", "POST"])
@staff_required()
def invoice_resend(public_id: str):
    """Send the invoice to the addresses staff type (through the outbox)."""
    found = scope.invoice(public_id)
    form = EmailForm()
    sent = False
    if retention.files_of(db.session, found).xml is None:
        form.email.errors = [_("Esta factura no tiene archivos (es un dato de demostración).")]
    elif form.validate_on_submit():
        queue_invoice_mail(db.session, found, form.addresses)
        found.last_sent_at = datetime.now(UTC)
        db.session.commit()
        if not is_htmx():
            return redirect(url_for(".invoice", public_id=public_id, aviso="enviada"), 303)
        sent = True
    status = 422 if form.errors and request.method == "POST" and not is_htmx() else 200
    return render(
        "admin/invoices_resend.html",
        "dialog",
        status,
        form=form,
        invoice=found,
        sent=sent,
        in_dialog=is_htmx(),
    )


@bp.route("/facturas/<public_id>/cancelar", methods=["GET", "POST"])
@staff_required(ADMIN)
def invoice_cancel(public_id: str):
    """Ask the PAC to cancel; the outcome on the detail page. GET (htmx, the motive changed)
    gives the form again, with the replacement's field for motive 01."""
    found = scope.invoice(public_id)
    if request.method == "GET":
        if not is_htmx():
            return redirect(url_for(".invoice", public_id=public_id) + "#cancelar", 303)
        form = CancelForm(formdata=request.args)  # shown again, not validated
        return _detail(found, form)
    form = CancelForm()
    if not form.validate_on_submit():
        return _detail(found, form, 422)
    try:
        cancel.request_cancel(
            db.session,
            found,
            form.motive.data,
            stamping().pac_for(found.issuer),
            datetime.now(UTC),
            form.replacement_uuid.data or None,
            staff_id=current_staff().id,
        )
    except cancel.CancelError as error:
        db.session.refresh(found)
        if error.field in ("motive", "replacement_uuid"):
            form[error.field].errors = [error.translated(_)]
            return _detail(found, form, 422)
        return _detail(found, form, 422, error=error.translated(_))
    notice = {"cancelled": "cancelada", "rejected": "rechazada"}.get(
        found.cancel_status.value, "sin_respuesta" if found.cancel_error else "en_proceso"
    )
    return redirect(url_for(".invoice", public_id=public_id, aviso=notice), 303)


@bp.post("/facturas/<public_id>/receptor-simulado")
@staff_required(ADMIN)
def invoice_sandbox_answer(public_id: str):
    """Sandbox only: answer a pending cancellation as the receptor would (buzón tributario),
    then record the outcome, so the whole flow can be tried without a real receptor."""
    found = scope.invoice(public_id)
    pac = stamping().pac_for(found.issuer)
    if not isinstance(pac, SandboxPac):
        abort(404)
    if found.cancel_status is CancelStatus.PENDING and found.uuid:
        with contextlib.suppress(ValueError):  # already answered: refresh tells what happened
            pac.receptor_answers(found.uuid, accept=request.form.get("respuesta") == "aceptar")
    return invoice_cancel_status(public_id)


@bp.post("/facturas/<public_id>/estado")
@staff_required(ADMIN)
def invoice_cancel_status(public_id: str):
    """Ask the PAC whether the receptor answered a pending cancellation."""
    found = scope.invoice(public_id)
    try:
        cancel.refresh(db.session, found, stamping().pac_for(found.issuer), datetime.now(UTC))
    except cancel.CancelError as error:
        return _detail(found, status=422, error=error.translated(_))
    notice = {"cancelled": "cancelada", "rejected": "rechazada"}.get(
        found.cancel_status.value if found.cancel_status else "", "sin_cambio"
    )
    return redirect(url_for(".invoice", public_id=public_id, aviso=notice), 303)
