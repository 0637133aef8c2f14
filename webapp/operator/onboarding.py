"""Onboarding a merchant (/operador/alta): the operator creates the issuer (Mexico: RFC,
razón social, régimen, CP; Ecuador: RUC and razón social; its portal slug and licence) and
invites its first admin by email (the back office's "choose your password" link). The
issuer stays out of the customers' sight until its admin completes the checklist
(webapp.admin.onboarding). `invite_first_admin` is shared with `flask issuers create`."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import DateField, EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from webapp.accounts.forms import RfcEmailForm
from webapp.admin import people as admin_people
from webapp.admin.staff import StaffError, create_staff
from webapp.extensions import db
from webapp.fiscal import catalogs
from webapp.fiscal.limits import LEGAL_NAME_MAX
from webapp.htmx import render
from webapp.mail import queue_mail
from webapp.models import Issuer, StaffMember, StaffRole
from webapp.operator import bp
from webapp.operator.home import operator_only
from webapp.platform import onboarding


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class OnboardForm(FlaskForm):
    country = SelectField(
        _l("País"),
        choices=[
            SelectChoice("MX", _l("México (CFDI 4.0)")),
            SelectChoice("EC", _l("Ecuador (SRI)")),
        ],
        validate_choice=False,
    )
    kind = SelectField(
        _l("Tipo de emisor"),
        choices=[
            SelectChoice("retail", _l("Comercio (tickets de sucursales)")),
            SelectChoice("services", _l("Servicios (recibos mensuales)")),
        ],
        validate_choice=False,
    )
    rfc = StringField(
        _l("RFC (México) o RUC (Ecuador)"),
        filters=[_upper],
        render_kw={"maxlength": 13, "autocapitalize": "characters", "autocomplete": "off"},
    )
    legal_name = StringField(_l("Razón social"), render_kw={"maxlength": LEGAL_NAME_MAX})
    regimen = SelectField(
        _l("Régimen fiscal (México)"),
        choices=[SelectChoice("", _l("— Elija el régimen —"))]
        + [SelectChoice(c, f"{c} · {n}") for c, n in catalogs.REGIMENES.items()],
        validate_choice=False,
    )
    cp = StringField(
        _l("Código postal del domicilio fiscal (México)"),
        filters=[_strip],
        render_kw={"maxlength": 5, "inputmode": "numeric"},
    )
    slug = StringField(
        _l("Dirección del portal"),
        filters=[_strip],
        render_kw={"maxlength": onboarding.SLUG_MAX, "autocapitalize": "none"},
    )
    expires = DateField(_l("La licencia vence el"))
    email = EmailField(
        _l("Correo de su administrador"),
        filters=[_strip],
        render_kw={"autocomplete": "off", "maxlength": 254, "autocapitalize": "none"},
    )
    name = StringField(
        _l("Nombre de su administrador"), filters=[_strip], render_kw={"maxlength": 120}
    )

    validate_email = RfcEmailForm.validate_email


def _messages(country: str) -> dict[tuple[str, str], str]:
    ec = country == "EC"
    return {
        ("country", onboarding.UNKNOWN): _("Elija México o Ecuador."),
        ("kind", onboarding.UNKNOWN): _("Elija el tipo de emisor."),
        ("rfc", onboarding.EMPTY): _("Escriba el RUC del emisor.")
        if ec
        else _("Escriba el RFC del emisor."),
        ("rfc", onboarding.FORMAT): _("El RUC no es válido: revise sus 13 dígitos.")
        if ec
        else _("El RFC debe tener 12 caracteres (persona moral) o 13 (física)."),
        ("rfc", "generic"): _("Un RFC genérico no puede emitir facturas."),
        ("rfc", "check_digit"): _(
            "La homoclave o el dígito verificador de este RFC no son correctos."
        ),
        ("rfc", onboarding.TAKEN): _("Ya hay un emisor con ese RFC o RUC."),
        ("legal_name", onboarding.EMPTY): _("Escriba la razón social."),
        ("legal_name", onboarding.FORMAT): _("La razón social no puede llevar «|»."),
        ("legal_name", onboarding.TOO_LONG): _(
            "La razón social admite como máximo %(max)s caracteres.", max=LEGAL_NAME_MAX
        ),
        ("legal_name", "has_suffix"): _(
            "Escríbala sin el régimen societario (por ejemplo, sin «S.A. DE C.V.»), "
            "como en la Constancia de Situación Fiscal."
        ),
        ("legal_name", "not_uppercase"): _("Escriba la razón social en mayúsculas."),
        ("regimen", onboarding.EMPTY): _("Elija un régimen fiscal del catálogo del SAT."),
        ("regimen", onboarding.UNKNOWN): _("Elija un régimen fiscal del catálogo del SAT."),
        ("regimen", onboarding.WRONG_PERSON_TYPE): _(
            "Ese régimen no corresponde al tipo de persona de este RFC (moral: 12 caracteres; "
            "física: 13)."
        ),
        ("cp", onboarding.EMPTY): _("Escriba el código postal."),
        ("cp", onboarding.FORMAT): _("El código postal tiene 5 dígitos."),
        ("cp", onboarding.UNKNOWN): _("Ese código postal no existe en el catálogo del SAT."),
        ("slug", onboarding.EMPTY): _("Escriba la dirección del portal, por ejemplo «mi-tienda»."),
        ("slug", onboarding.TOO_LONG): _(
            "La dirección admite como máximo %(max)s caracteres.", max=onboarding.SLUG_MAX
        ),
        ("slug", onboarding.FORMAT): _(
            "Use sólo minúsculas sin acentos, dígitos y guiones (sin guion al principio ni al "
            "final)."
        ),
        ("slug", onboarding.TAKEN): _("Esa dirección ya es de otro emisor."),
    }


def invite_first_admin(issuer: Issuer, email: str, name: str = "") -> tuple[StaffMember, str]:
    """The issuer's first admin, created with no password, and the "choose your password"
    email queued (admin/email/password, like the back office's invitations); the link.
    Flushed, the caller commits. StaffError when the email is taken or not an address."""
    member = create_staff(db.session, email, StaffRole.ISSUER_ADMIN, issuer, name=name)
    link = admin_people.password_link(member)  # single use: valid STAFF_INVITATION_HOURS
    context = dict(
        member=member,
        base_url=current_app.config["BASE_URL"],
        link=link,
        hours=current_app.config["STAFF_INVITATION_HOURS"],
    )
    queue_mail(
        db.session,
        member.email,
        render_template("admin/email/password.subject.txt", **context).strip(),
        render_template("admin/email/password.txt", **context),
    )
    return member, link


def _new_issuer(form: OnboardForm, expires: datetime | None) -> onboarding.NewIssuer:
    return onboarding.NewIssuer(
        tax_id=form.rfc.data or "",
        legal_name=form.legal_name.data or "",
        slug=form.slug.data or "",
        regimen=form.regimen.data or "",
        cp=form.cp.data or "",
        country=form.country.data or "",
        kind=form.kind.data or "",
        licence_expires_at=expires,
    )


@bp.route("/alta", methods=["GET", "POST"])
@operator_only
def onboard():
    form = OnboardForm()
    now = datetime.now(UTC)
    if request.method == "GET":
        form.expires.data = (now + timedelta(days=onboarding.LICENCE_DAYS)).date()
        return render("operator/onboard.html", "content", form=form)
    if form.validate_on_submit() or form.errors.keys() <= {"expires", "email"}:
        expires = None
        if not "".join(form.expires.raw_data or []).strip():  # empty: a year's licence
            form.expires.errors = []
        elif form.expires.data is None:
            form.expires.errors = [_("Escriba una fecha válida (día, mes y año).")]
        else:
            expires = datetime.combine(form.expires.data, time(23, 59, 59), UTC)
            if expires <= now:
                form.expires.errors = [_("La licencia debe vencer después de hoy.")]
        new = _new_issuer(form, expires)
        problems = onboarding.check(db.session, new)
        messages = _messages(new.country)
        for field, problem in problems.items():
            form[field].errors = [messages.get((field, problem), _("Revise este dato."))]
        if not any(f.errors for f in form):
            try:
                issuer = onboarding.create(db.session, new, now)
                invite_first_admin(issuer, form.email.data, form.name.data or "")
                db.session.commit()
            except (StaffError, IntegrityError):
                db.session.rollback()
                form.email.errors = [admin_people.EMAIL_TAKEN]
            else:
                return redirect(
                    url_for("operator.issuer", issuer_id=issuer.id, aviso="creado"), 303
                )
    return render("operator/onboard.html", "content", status=422, form=form)
