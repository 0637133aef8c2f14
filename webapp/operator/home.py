"""The operator console's home (/operador/): every issuer with its kind and country, licence
expiry, stamp credits and onboarding state; each issuer's page with its subscription (add or
remove products, the licence's expiry), its credits' ledger and an adjustment of credits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from flask import abort, current_app, has_request_context, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from webapp.admin.auth import current_staff, staff_required
from webapp.extensions import db
from webapp.htmx import render
from webapp.issuing import credits
from webapp.models import Issuer, StaffRole
from webapp.models.platform import Product
from webapp.operator import bp
from webapp.platform import catalog, figures, onboarding

operator_only = staff_required(StaffRole.OPERATOR)

# The console's menu: each entry shows when its view exists (another module may add it).
MENU = [
    ("operator.home", _l("Emisores")),
    ("operator.products", _l("Productos")),
    ("operator.onboard", _l("Alta de emisor")),
    ("operator.payments", _l("Pagos")),
    ("operator.settings", _l("Ajustes")),
]
LEDGER_ROWS = 50
ADJUST_MAX = 1_000_000
NOTICES = {
    "creado": _l("Emisor creado. Enviamos la invitación a su administrador."),
    "suscripcion": _l("Suscripción guardada."),
    "quitado": _l("Producto quitado de la suscripción."),
    "licencia": _l("Vigencia de la licencia guardada."),
    "ajuste": _l("Ajuste de timbres registrado."),
}
REASONS = {
    "stamp": _l("Timbre"),
    "refund": _l("Devolución"),
    "purchase": _l("Compra"),
    "adjustment": _l("Ajuste"),
}


@bp.app_context_processor
def _operator_context():
    if not has_request_context() or request.blueprint != "operator":
        return {}
    if (member := current_staff()) is None or member.role is not StaffRole.OPERATOR:
        return {}
    views = current_app.view_functions
    return {
        "staff": member,
        "operator_nav": [(endpoint, label) for endpoint, label in MENU if endpoint in views],
    }


def _issuer(issuer_id: int) -> Issuer:
    found = db.session.get(Issuer, issuer_id)
    if found is None:
        abort(404)
    return found


@bp.get("/")
@operator_only
def home():
    issuers = db.session.scalars(select(Issuer).order_by(Issuer.legal_name)).all()
    now = datetime.now(UTC)
    return render(
        "operator/home.html",
        "content",
        issuers=issuers,
        now=now,
        console_charts=figures.console_charts(db.session, now),
        notice=NOTICES.get(request.args.get("aviso", "")),
    )


class SubscribeForm(FlaskForm):
    product = SelectField(_l("Producto"), choices=[], validate_choice=False)
    quantity = StringField(
        _l("Cantidad"), default="1", render_kw={"inputmode": "numeric", "maxlength": 3}
    )


class LicenceForm(FlaskForm):
    expires = DateField(_l("La licencia vence el"))


class AdjustForm(FlaskForm):
    delta = IntegerField(_l("Timbres (positivo suma, negativo resta)"))
    note = StringField(_l("Motivo"), render_kw={"maxlength": 200})


def _subscribe_form(posted: bool = False) -> SubscribeForm:
    form = SubscribeForm() if posted else SubscribeForm(formdata=None)
    form.product.choices = [SelectChoice("", _l("— Elija un producto —"))] + [
        SelectChoice(str(p.id), f"{p.code} · {p.description}")
        for p in catalog.products(db.session, active_only=True)
    ]
    return form


def _detail(issuer: Issuer, status: int = 200, **forms):
    licence_form = forms.get("licence_form") or LicenceForm(formdata=None)
    if "licence_form" not in forms and issuer.licence_expires_at is not None:
        licence_form.expires.data = issuer.licence_expires_at.date()
    return render(
        "operator/issuer.html",
        "content",
        status=status,
        issuer=issuer,
        admin=onboarding.first_admin(db.session, issuer),
        subscriptions=catalog.subscriptions(db.session, issuer.id),
        ledger=catalog.ledger(db.session, issuer.id, LEDGER_ROWS),
        reasons=REASONS,
        subscribe_form=forms.get("subscribe_form") or _subscribe_form(),
        licence_form=licence_form,
        adjust_form=forms.get("adjust_form") or AdjustForm(formdata=None),
        remove_form=FlaskForm(),
        now=datetime.now(UTC),
        notice=NOTICES.get(request.args.get("aviso", "")),
    )


def _done(issuer: Issuer, notice: str):
    return redirect(url_for("operator.issuer", issuer_id=issuer.id, aviso=notice), 303)


@bp.get("/emisores/<int:issuer_id>")
@operator_only
def issuer(issuer_id: int):
    return _detail(_issuer(issuer_id))


@bp.post("/emisores/<int:issuer_id>/suscripcion")
@operator_only
def subscribe(issuer_id: int):
    found = _issuer(issuer_id)
    form = _subscribe_form(posted=True)
    if not form.validate_on_submit():
        return _detail(found, 422, subscribe_form=form)
    product = None
    if (form.product.data or "").isdigit():
        product = db.session.scalar(
            select(Product).where(Product.id == int(form.product.data), Product.active.is_(True))
        )
    if product is None:
        form.product.errors = [_("Elija un producto del catálogo.")]
    quantity = (form.quantity.data or "").strip()
    if not (quantity.isascii() and quantity.isdigit() and 1 <= int(quantity) <= 999):
        form.quantity.errors = [_("Escriba una cantidad entre 1 y 999.")]
    if form.product.errors or form.quantity.errors:
        return _detail(found, 422, subscribe_form=form)
    catalog.subscribe(db.session, found, product, int(quantity))
    db.session.commit()
    return _done(found, "suscripcion")


@bp.post("/emisores/<int:issuer_id>/suscripcion/<int:subscription_id>/quitar")
@operator_only
def unsubscribe(issuer_id: int, subscription_id: int):
    found = _issuer(issuer_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not catalog.unsubscribe(db.session, found, subscription_id):
        abort(404)
    db.session.commit()
    return _done(found, "quitado")


@bp.post("/emisores/<int:issuer_id>/licencia")
@operator_only
def licence(issuer_id: int):
    found = _issuer(issuer_id)
    form = LicenceForm()
    if not form.validate_on_submit() or form.expires.data is None:
        form.expires.errors = [_("Escriba una fecha válida (día, mes y año).")]
        return _detail(found, 422, licence_form=form)
    expires: date = form.expires.data
    # The licence holds through the whole day (in UTC; the check has days of grace).
    catalog.set_licence_expiry(found, datetime.combine(expires, time(23, 59, 59), UTC))
    db.session.commit()
    return _done(found, "licencia")


@bp.post("/emisores/<int:issuer_id>/timbres")
@operator_only
def adjust(issuer_id: int):
    found = _issuer(issuer_id)
    form = AdjustForm()
    valid = form.validate_on_submit()
    if not valid or form.delta.data in (None, 0) or abs(form.delta.data) > ADJUST_MAX:
        form.delta.errors = [
            _("Escriba un número entero distinto de cero, hasta %(max)s.", max=ADJUST_MAX)
        ]
    note = " ".join((form.note.data or "").split())
    if not note:
        form.note.errors = [_("Escriba el motivo del ajuste.")]
    elif len(note) > 200:
        form.note.errors = [_("El motivo admite como máximo 200 caracteres.")]
    if not form.delta.errors and (found.stamp_credits or 0) + form.delta.data < 0:
        form.delta.errors = [_("El ajuste dejaría el saldo de timbres en negativo.")]
    if form.delta.errors or form.note.errors:
        return _detail(found, 422, adjust_form=form)
    try:
        credits.add(db.session, found, form.delta.data, "adjustment", note=note)
    except ValueError:  # refused by the ledger
        db.session.rollback()
        form.delta.errors = [_("El ajuste dejaría el saldo de timbres en negativo.")]
        return _detail(_issuer(issuer_id), 422, adjust_form=form)
    db.session.commit()
    return _done(found, "ajuste")
