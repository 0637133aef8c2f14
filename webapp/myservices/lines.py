"""Mis servicios: the lines an account holds (seed 002, 1.4 and 2.x). "Agregar línea": the
type of service, the number and GENERAR (a code by SMS, webapp.billing.lines), the CÓDIGO and
Aceptar; "Consultar" a line's detail; remove a line.

The number being added is kept in the session (per issuer) between GENERAR and Aceptar. The
answer to GENERAR is the same whether or not the number is a line."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from webapp import ratelimits
from webapp.billing import lines as domain
from webapp.extensions import db
from webapp.htmx import forward, is_htmx, redirect_any
from webapp.models import Issuer, LineKind, ServiceBill, ServiceType
from webapp.myservices import bp
from webapp.myservices.context import holder, holder_required, services_issuer
from webapp.ratelimits import Limit

PENDING = "line_code"  # session: {"issuer": id, "tipo": code, "number": normalised}
LATEST_BILLS = 6

INVALID_CODE = _l("El código no es válido o venció. Genere uno nuevo.")
TOO_MANY = _l("Ha pedido demasiados códigos. Intente de nuevo más tarde.")


class NumberForm(FlaskForm):
    numero = StringField(_l("Número"))


class CodeForm(FlaskForm):
    codigo = StringField(
        _l("CÓDIGO"),
        render_kw={
            "inputmode": "numeric",
            "autocomplete": "one-time-code",
            "pattern": "[0-9]{6}",
            "maxlength": "6",
            "minlength": "6",
            "required": True,
            "autofocus": True,
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _types(issuer: Issuer) -> list[ServiceType]:
    return list(
        db.session.scalars(
            select(ServiceType)
            .where(ServiceType.issuer_id == issuer.id)
            .order_by(ServiceType.position, ServiceType.id)
        )
    )


def _number_field(form: NumberForm, kind: LineKind) -> None:
    attrs = {"maxlength": str(domain.NUMBER_INPUT_MAX), "required": True, "autofocus": True}
    if kind is LineKind.PHONE:
        form.numero.label.text = _("Número de teléfono")
        attrs |= {"type": "tel", "inputmode": "tel", "autocomplete": "tel"}
    else:
        form.numero.label.text = _("Número de contrato")
        attrs |= {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
    form.numero.render_kw = attrs


def _pending(issuer: Issuer, service_type: ServiceType) -> str | None:
    state = session.get(PENDING)
    if (
        isinstance(state, dict)
        and state.get("issuer") == issuer.id
        and state.get("tipo") == service_type.code
        and isinstance(state.get("number"), str)
    ):
        return state["number"]
    return None


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


@bp.route("/<slug>/mis-servicios")
@holder_required
def home(slug: str):
    issuer = services_issuer(slug)
    held = domain.held_lines(db.session, holder().id, issuer.id)
    return render_template("myservices/home.html", issuer=issuer, lines=held, types=_types(issuer))


def _add_page(issuer, service_type, types, *, number=None, form=None, code_form=None, **extra):
    """The "Agregar línea" page: the types to choose from (no `service_type`), the number
    (step 1), or the code (step 2: `number` set)."""
    if service_type is not None and number is None and form is None:
        form = NumberForm(formdata=None)
    if form is not None:
        _number_field(form, service_type.line_kind)
    if number is not None and code_form is None:
        code_form = CodeForm(formdata=None)
    return render_template_page(
        issuer=issuer,
        service_type=service_type,
        types=types,
        number=number,
        form=form,
        code_form=code_form,
        wait=extra.pop("wait", 0),
        **extra,
    )


def render_template_page(**context) -> str:
    return render_template("myservices/add_line.html", **context)


@bp.route("/<slug>/lineas/agregar", methods=["GET", "POST"])
@holder_required
def add_line(slug: str):
    issuer = services_issuer(slug)
    types = _types(issuer)
    tipo = request.args.get("tipo", "")
    service_type = next((t for t in types if t.code == tipo), None)
    if service_type is None:  # choose the type first (seed 1.4); an unknown one: 404
        if tipo:
            abort(404)
        if request.method == "POST":
            return redirect(url_for(".add_line", slug=slug), 303)
        return _add_page(issuer, None, types)
    here = url_for(".add_line", slug=slug, tipo=service_type.code)
    number = None if request.args.get("otro") else _pending(issuer, service_type)
    if request.method == "GET":
        return _add_page(issuer, service_type, types, number=number)
    if "codigo" in request.form:
        return _confirm(issuer, service_type, types, number, here)
    if "reenviar" in request.form:
        if number is None:
            return redirect(here, 303)
        return _generate(issuer, service_type, types, number, here, resend=True)
    form = NumberForm()
    if not form.validate_on_submit():  # the CSRF token
        return forward(_add_page(issuer, service_type, types, form=form), 400, None)
    raw = form.numero.data or ""
    problem = None
    if not raw.strip():
        problem = _("Escriba el número.")
    else:
        try:
            number = domain.normalise(service_type, raw)
        except ValueError:
            problem = (
                _("Escriba un número de teléfono de 10 dígitos, por ejemplo 55 1234 5678.")
                if service_type.line_kind is LineKind.PHONE
                else _(
                    "Escriba el número de contrato como aparece en su factura: letras y dígitos."
                )
            )
    if problem:
        form.numero.errors = [problem]
        return forward(_add_page(issuer, service_type, types, form=form), 422, None)
    return _generate(issuer, service_type, types, number, here, form=form)


def _generate(issuer, service_type, types, number, here, *, resend=False, form=None):
    """GENERAR (or "Reenviar código"): a code for `number`, the same answer whether or not
    the number is a line."""
    account_id = holder().id

    def admit(normalised: str) -> bool:
        return (
            ratelimits.take(
                Limit(
                    "RATELIMIT_LINE_CODE_NUMBER", "line-code-number", f"{issuer.id}:{normalised}"
                ),
                Limit("RATELIMIT_LINE_CODE_ACCOUNT", "line-code-account", str(account_id)),
                Limit("RATELIMIT_LINE_CODE_IP", "line-code-ip", ratelimits.client_key()),
            )
            is None
        )

    issuer_id = issuer.id
    result = domain.request_code(
        db.session,
        account_id,
        issuer,
        service_type,
        number,
        _now(),
        secret=_secret(),
        admit=admit,
    )
    db.session.commit()
    issuer = db.session.get(Issuer, issuer_id)
    if result.outcome is domain.Outcome.SENT:
        session[PENDING] = {"issuer": issuer.id, "tipo": service_type.code, "number": result.number}
        if is_htmx():
            page = _add_page(issuer, service_type, types, number=result.number, sent=True)
            return forward(page, 200, here)
        flash(
            _(
                "Si el número pertenece a una cuenta de %(issuer)s, recibirá un SMS con un código.",
                issuer=issuer.legal_name,
            )
        )
        return redirect(here, 303)
    if result.outcome is domain.Outcome.TOO_SOON:
        message = _(
            "Ya le enviamos un código. Podrá pedir otro en %(n)s segundos.", n=result.wait_seconds
        )
        retry = result.wait_seconds
    else:
        message = TOO_MANY
        retry = 3600
    if resend:
        page = _add_page(issuer, service_type, types, number=number, resend_error=message)
    else:
        form.numero.errors = [message]
        page = _add_page(issuer, service_type, types, form=form)
    response = forward(page, 429, None)
    response.headers["Retry-After"] = str(retry)
    return response


def _confirm(issuer, service_type, types, number, here):
    """Aceptar: the code typed for the number being added."""
    code_form = CodeForm()
    if number is None:  # no code asked for in this session (or it was another type's)
        return redirect(here, 303)
    if not code_form.validate_on_submit():  # the CSRF token
        return forward(
            _add_page(issuer, service_type, types, number=number, code_form=code_form), 400, None
        )
    typed = (code_form.codigo.data or "").strip()
    if not domain.is_code(typed):
        code_form.codigo.errors = [_("Escriba los 6 dígitos del código que recibió por SMS.")]
        page = _add_page(issuer, service_type, types, number=number, code_form=code_form)
        return forward(page, 422, None)
    issuer_id, slug = issuer.id, issuer.slug
    held = domain.confirm(db.session, holder().id, issuer, number, typed, _now(), secret=_secret())
    db.session.commit()
    issuer = db.session.get(Issuer, issuer_id)
    if held is None:
        code_form.codigo.errors = [str(INVALID_CODE)]
        page = _add_page(issuer, service_type, types, number=number, code_form=code_form)
        return forward(page, 422, None)
    session.pop(PENDING, None)
    flash(_("Agregamos la línea %(number)s.", number=number))
    return redirect_any(url_for(".home", slug=slug))


def _held_or_404(issuer: Issuer, line_id: int):
    line = domain.held_line(db.session, holder().id, issuer.id, line_id)
    if line is None:  # not held by this account: as if there were no such line
        abort(404)
    return line


@bp.route("/<slug>/lineas/<int:line_id>")
@holder_required
def line(slug: str, line_id: int):
    issuer = services_issuer(slug)
    found = _held_or_404(issuer, line_id)
    bills = list(
        db.session.scalars(
            select(ServiceBill)
            .where(
                ServiceBill.service_account_id == found.service_account_id,
                ServiceBill.issuer_id == issuer.id,
            )
            .order_by(ServiceBill.period.desc())
            .limit(LATEST_BILLS)
        )
    )
    return render_template(
        "myservices/line.html",
        issuer=issuer,
        line=found,
        bills=bills,
        bill_links="myservices.bill" in current_app.view_functions,
    )


@bp.route("/<slug>/lineas/<int:line_id>/quitar", methods=["GET", "POST"])
@holder_required
def remove_line(slug: str, line_id: int):
    issuer = services_issuer(slug)
    found = _held_or_404(issuer, line_id)
    if request.method == "GET":
        return render_template("myservices/remove_line.html", issuer=issuer, line=found)
    number = found.number
    domain.remove(db.session, holder().id, found.id)
    db.session.commit()
    flash(_("Quitamos la línea %(number)s de su cuenta.", number=number))
    return redirect_any(url_for(".home", slug=slug))
