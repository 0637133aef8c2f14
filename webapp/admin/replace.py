"""Sustituir factura (/admin/facturas/<id>/sustituir): an issuer admin corrects an invoice's
receptor data, forma de pago or delivery address. The replacement is stamped naming the
original (TipoRelacion 04), then the original is cancelled with motive 01, in one action
(`webapp.issuing.replace`). The RFC cannot change: that is motive 02 and a new invoice.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import current_app, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, SelectField
from wtforms.validators import Regexp

from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.cfdi.pac import PacError
from webapp.extensions import db
from webapp.fiscal import catalogs
from webapp.htmx import is_htmx, render
from webapp.invoicing import messages
from webapp.invoicing.forms import TicketForm, check_receptor_data, fill_receptor_choices, show
from webapp.issuing import cancel, issue, replace
from webapp.mail import validate_address
from webapp.models import Invoice, InvoiceStatus, StaffRole
from webapp.wiring import signing_problem, stamping

ADMIN = StaffRole.ISSUER_ADMIN
REFUSALS = {
    "global": _l("Una factura global no se sustituye: use «Corregir» en Factura global."),
    "not_stamped": _l("Sólo se sustituye una factura timbrada y vigente."),
    "cancel_pending": _l(
        "Esta factura tiene una cancelación en proceso: espere la respuesta del receptor."
    ),
    "other_rfc": _l("La sustitución lleva el mismo RFC."),
}


def _refusal(original, code: str) -> str:
    """Why the replacement is refused: its own reasons, else why the issuer cannot stamp
    (no stamp credits, its licence expired)."""
    return str(REFUSALS.get(code) or signing_problem(original.issuer) or code)


class ReplaceForm(FlaskForm):
    """The receptor data, forma de pago and delivery address of the replacement."""

    nombre = TicketForm.nombre
    cp = TicketForm.cp
    regimen = TicketForm.regimen
    uso_cfdi = TicketForm.uso_cfdi
    forma_pago = SelectField(_l("Forma de pago"), choices=[], validate_choice=False)
    email = EmailField(
        _l("Enviar la nueva factura a (opcional)"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"autocomplete": "off", "maxlength": 254},
    )
    confirm = BooleanField(
        _l("Confirmo: emitir la sustitución y cancelar esta factura con el motivo 01")
    )
    key = HiddenField(validators=[Regexp(r"[A-Za-z0-9_-]{0,64}\Z")])


def _form(original: Invoice, url: str) -> ReplaceForm:
    """As posted (or as being edited, for the uso list), else filled from the original."""
    if request.method == "POST":
        form = ReplaceForm()
    elif is_htmx():
        form = ReplaceForm(formdata=request.args, meta={"csrf": False})
    else:
        form = ReplaceForm(
            formdata=None,
            nombre=original.receptor_nombre,
            cp=original.receptor_cp,
            regimen=original.receptor_regimen,
            uso_cfdi=original.uso_cfdi,
            forma_pago=original.forma_pago,
            email=original.delivery_email or "",
            key=secrets.token_urlsafe(24),
        )
    fill_receptor_choices(form, original.receptor_rfc)
    form.forma_pago.choices = [
        (code, f"{code} · {catalogs.FORMAS_PAGO.get(code, code)}")
        for code in dict.fromkeys([*original.issuer.formas_pago.split(","), original.forma_pago])
    ]
    form.regimen.render_kw = {  # the usos allowed follow the régimen chosen
        "hx-get": url,
        "hx-trigger": "change",
        "hx-target": "#campo-uso_cfdi",
        "hx-swap": "outerHTML",
        "hx-include": "closest form",
    }
    return form


def _check(form: ReplaceForm, original: Invoice):
    """The Changes, or None with the messages on the fields."""
    receptor, errors = check_receptor_data(form, original.receptor_rfc)
    if form.forma_pago.data not in dict(form.forma_pago.choices):
        errors["forma_pago"] = messages.BAD_FORMA_PAGO
    email = None
    if form.email.data:
        try:
            email = validate_address(form.email.data)
        except ValueError:
            errors["email"] = messages.BAD_EMAIL
    if not form.confirm.data:
        errors["confirm"] = _("Marque la casilla para confirmar la sustitución.")
    show(form, errors)
    if errors or receptor is None:
        return None
    return replace.Changes(receptor=receptor, forma_pago=form.forma_pago.data, email=email)


def _page(original: Invoice, form: ReplaceForm, status: int = 200, error: str | None = None):
    return render(
        "admin/invoices_replace.html",
        "field_uso_cfdi",
        status,
        invoice=original,
        form=form,
        error=error,
        existing=replace.replacement_of(db.session, original),
    )


@bp.route("/facturas/<public_id>/sustituir", methods=["GET", "POST"])
@staff_required(ADMIN)
def invoice_replace(public_id: str):
    original = scope.invoice(public_id)
    url = url_for(".invoice_replace", public_id=public_id)
    form = _form(original, url)
    if request.method == "GET":
        return _page(original, form)
    try:
        replace.check(original)
    except replace.ReplaceError as refused:
        return _page(original, form, 409, _refusal(original, refused.code))
    if not form.validate_on_submit():
        return _page(original, form, 422)
    changes = _check(form, original)
    if changes is None:
        return _page(original, form, 422)
    session = db.session
    try:
        new = replace.replace(
            session,
            original,
            changes,
            datetime.now(UTC),
            key=form.key.data or secrets.token_urlsafe(24),
            stamping=stamping(),
            staff_id=current_staff().id,
        )
    except replace.ReplaceError as refused:
        return _page(original, form, 409, _refusal(original, refused.code))
    except issue.StampingFailed as failure:
        current_app.logger.warning("replacement refused: %s", failure.error)
        message = _(
            "El PAC rechazó la factura de sustitución: %(detail)s", detail=failure.error.message
        )
        return _page(original, form, 422, message)
    except PacError as error:  # the stamp's outcome is unknown: reconcile settles it
        current_app.logger.warning("replacement not answered: %s", error)
        return _page(
            original,
            form,
            503,
            _(
                "El PAC no respondió. La factura de sustitución se "
                "terminará de timbrar sola; vuelva en unos minutos."
            ),
        )
    except cancel.CancelError:
        return redirect(url_for(".invoice", public_id=public_id, aviso="sin_cancelar"), 303)
    if new.status is not InvoiceStatus.STAMPED:  # another request is stamping it
        return redirect(
            url_for(".invoice", public_id=public_id, aviso="sustitucion_en_timbrado"), 303
        )
    session.refresh(original)
    cancelled = original.status is InvoiceStatus.CANCELLED
    notice = "sustituye_cancelada" if cancelled else "sustituye_en_proceso"
    return redirect(url_for(".invoice", public_id=new.public_id, aviso=notice), 303)
