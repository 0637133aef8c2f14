"""The operator's settings (/operador/ajustes): who merchants pay (beneficiario, banco, cuenta,
CLABE with its check digit verified, the banks where they may pay), the licence's grace
period, the low-credit warning thresholds, and which issuer of the platform is the platform's
own (its CFDI to the merchants for their payments: webapp.platform.confirm).

One row (PlatformSettings), created on the first save. A form that does not pass comes back
with Spanish messages next to its fields and 422; one that passes redirects (303).
"""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from webapp.admin.auth import staff_required
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import Issuer, StaffRole
from webapp.operator import bp
from webapp.platform import platform_issuer as platform
from webapp.wiring import signing_problem

GRACE_MAX = 365
BANKS_MAX = 300  # PlatformSettings.banks
BANK_NAME_MAX = 60


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class SettingsForm(FlaskForm):
    beneficiary = StringField(
        _l("Beneficiario"), filters=[_strip], render_kw={"maxlength": 200, "autocomplete": "off"}
    )
    bank = StringField(_l("Banco"), filters=[_strip], render_kw={"maxlength": 80})
    account = StringField(
        _l("Cuenta"), filters=[_strip], render_kw={"maxlength": 20, "inputmode": "numeric"}
    )
    clabe = StringField(
        _l("Cuenta interbancaria (CLABE)"),
        filters=[_strip],
        render_kw={"maxlength": 22, "inputmode": "numeric", "autocomplete": "off"},
    )
    banks = TextAreaField(_l("Bancos donde pagar"), filters=[_strip], render_kw={"rows": 4})
    grace_days = StringField(
        _l("Días de gracia"), filters=[_strip], render_kw={"maxlength": 3, "inputmode": "numeric"}
    )
    thresholds = StringField(
        _l("Umbrales de aviso de timbres"), filters=[_strip], render_kw={"maxlength": 60}
    )
    platform_issuer = SelectField(_l("Emisor de la plataforma"), choices=[], validate_choice=False)

    def fill_choices(self, issuers: list[Issuer]) -> None:
        self.platform_issuer.choices = [SelectChoice("", _("— Ninguno todavía —"))] + [
            SelectChoice(str(i.id), f"{i.legal_name} ({i.rfc})") for i in issuers
        ]


def _form(posted: bool) -> SettingsForm:
    if posted:
        form = SettingsForm()
    else:
        found = platform.settings(db.session)
        form = SettingsForm(formdata=None)
        if found is not None:
            form.beneficiary.data = found.beneficiary
            form.bank.data = found.bank
            form.account.data = found.account
            form.clabe.data = found.clabe
            form.banks.data = "\n".join(platform.banks(found.banks))
            form.grace_days.data = str(found.grace_days)
            form.thresholds.data = found.low_credit_thresholds
            form.platform_issuer.data = str(found.platform_issuer_id or "")
        else:
            form.grace_days.data = "15"
            form.thresholds.data = "100,20,0"
    form.fill_choices(platform.candidates(db.session))
    return form


def _bank_list(text: str) -> list[str]:
    """One bank a line (commas too), as typed."""
    return [b.strip() for line in (text or "").splitlines() for b in line.split(",") if b.strip()]


def check(form: SettingsForm, issuers: list[Issuer]) -> tuple[dict[str, str], dict]:
    """({field: Spanish message}, the values to store)."""
    errors: dict[str, str] = {}
    values: dict = {}
    beneficiary = form.beneficiary.data or ""
    if not beneficiary:
        errors["beneficiary"] = _("Escriba a nombre de quién se deposita (el beneficiario).")
    elif len(beneficiary) > 200:
        errors["beneficiary"] = _("Máximo %(n)s caracteres.", n=200)
    values["beneficiary"] = beneficiary
    bank = form.bank.data or ""
    if len(bank) > 80:
        errors["bank"] = _("Máximo %(n)s caracteres.", n=80)
    values["bank"] = bank
    account = (form.account.data or "").replace(" ", "")
    if account and (not account.isascii() or not account.isdigit() or len(account) > 20):
        errors["account"] = _("La cuenta lleva solo dígitos (hasta 20).")
    values["account"] = account
    clabe = platform.normalize_clabe(form.clabe.data or "")
    problem = platform.clabe_problem(clabe) if clabe else "empty"
    if problem is not None:
        errors["clabe"] = {
            "empty": _("Escriba la CLABE: 18 dígitos."),
            "digits": _("La CLABE lleva solo dígitos: 18 en total."),
            "length": _("La CLABE tiene 18 dígitos; esta tiene %(n)s.", n=len(clabe)),
            "check_digit": _(
                "El dígito verificador de esta CLABE no corresponde: revise que la haya "
                "copiado bien."
            ),
        }[problem]
    values["clabe"] = clabe
    banks = _bank_list(form.banks.data or "")
    if any(len(b) > BANK_NAME_MAX for b in banks):
        errors["banks"] = _("Cada banco, máximo %(n)s caracteres.", n=BANK_NAME_MAX)
    elif len(", ".join(banks)) > BANKS_MAX:
        errors["banks"] = _("La lista de bancos es muy larga (máximo %(n)s caracteres).", n=300)
    values["banks"] = ", ".join(banks)
    grace = form.grace_days.data or ""
    if not grace.isascii() or not grace.isdigit() or int(grace) > GRACE_MAX:
        errors["grace_days"] = _("Un número de días entre 0 y %(n)s.", n=GRACE_MAX)
    else:
        values["grace_days"] = int(grace)
    try:
        found = platform.thresholds(form.thresholds.data or "")
    except ValueError:
        errors["thresholds"] = _("Números enteros separados por comas, por ejemplo: 100, 20, 0.")
    else:
        values["low_credit_thresholds"] = ",".join(str(n) for n in found)
    chosen = form.platform_issuer.data or ""
    if chosen:
        match = next((i for i in issuers if str(i.id) == chosen), None)
        if match is None:
            errors["platform_issuer"] = _("Elija un emisor de la lista.")
        values["platform_issuer_id"] = match.id if match else None
    else:
        values["platform_issuer_id"] = None
    return errors, values


def _page(form: SettingsForm, status: int = 200):
    chosen = platform.platform_issuer(db.session)
    return render(
        "operator/settings.html",
        "content",
        status=status,
        form=form,
        platform_issuer=chosen,
        signing_problem=signing_problem(chosen) if chosen is not None else None,
        notice=_("Ajustes guardados.") if request.args.get("guardado") == "1" else None,
    )


@bp.get("/ajustes")
@staff_required(StaffRole.OPERATOR)
def settings():
    return _page(_form(posted=False))


@bp.post("/ajustes")
@staff_required(StaffRole.OPERATOR)
def settings_save():
    form = _form(posted=True)
    csrf_ok = form.validate_on_submit() or "csrf_token" not in form.errors
    for field in form:  # the fields are judged by check, in Spanish
        if field.name != "csrf_token":
            field.errors = []
    errors, values = check(form, platform.candidates(db.session))
    for name, message in errors.items():
        form[name].errors = [message]
    if errors or not csrf_ok:
        return _page(form, 422)
    row = platform.settings_for_update(db.session)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()
    return redirect(url_for("operator.settings", guardado=1), 303)
