"""Forms of the issuer settings (/admin/emisor) and the checks their values must pass.

Each `check_*` returns {field name: Spanish message}; {} when everything passes. The views
put the messages next to the fields and answer 422.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from stdnum.ec import ruc as ec_ruc
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.fields.choices import SelectChoice

from webapp.config import PACS
from webapp.fiscal import catalogs, matrix
from webapp.fiscal.limits import (
    CP_LENGTH,
    LEGAL_NAME_MAX,
    MAX_FOLIO,
    SERIE_MAX,
    TEXT_MESSAGES,
    TextProblem,
    check_text,
)
from webapp.fiscal.problems import Problem
from webapp.fiscal.receptor import check_cp, check_nombre, normalize_nombre
from webapp.fiscal.rfc import PersonType, check_rfc, person_type
from webapp.fiscal.window import MAX_DAYS_AFTER, WindowKind, WindowPolicy, parse_policy
from webapp.models import Issuer
from webapp.sri import catalogs as sri_catalogs

PERIODICIDADES = {
    "01": _l("Diaria"),
    "02": _l("Semanal"),
    "03": _l("Quincenal"),
    "04": _l("Mensual"),
    "05": _l("Bimestral"),
}
# Stricter than the CFDI's [^|]{1,25}: the serie also names the invoice's files.
SERIE = re.compile(rf"[A-Z0-9-]{{1,{SERIE_MAX}}}")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def issuer_regimenes(person: PersonType) -> list[str]:
    """Régimenes an issuer of `person` type may have: the receptor ones plus those only an
    emisor uses (609, 628, 629, 630)."""
    extra = [code for code, kind in matrix.NON_RECEPTOR_REGIMENES.items() if kind is person]
    return sorted([*matrix.regimenes_for(person), *extra])


class FiscalForm(FlaskForm):
    rfc = StringField(
        _l("RFC"), filters=[_upper], render_kw={"maxlength": 13, "autocapitalize": "characters"}
    )
    legal_name = StringField(_l("Razón social"), render_kw={"maxlength": LEGAL_NAME_MAX})
    regimen = SelectField(_l("Régimen fiscal"), choices=[], validate_choice=False)
    cp = StringField(
        _l("Código postal del domicilio fiscal"),
        filters=[_strip],
        render_kw={"maxlength": CP_LENGTH, "inputmode": "numeric"},
    )

    def fill_choices(self, rfc: str) -> None:
        try:
            person = person_type(rfc)
        except ValueError:
            codes = list(catalogs.REGIMENES)
        else:
            codes = issuer_regimenes(person)
        self.regimen.choices = [
            SelectChoice(c, f"{c} · {catalogs.REGIMENES.get(c, c)}") for c in codes
        ]


def check_fiscal(form: FiscalForm, issuer: Issuer, may_change_rfc: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    rfc = issuer.rfc
    if may_change_rfc:
        rfc, problem = check_rfc(form.rfc.data)
        if problem is not None:
            errors["rfc"] = {
                Problem.EMPTY: _("Escriba el RFC del emisor."),
                Problem.GENERIC: _("Un RFC genérico no puede emitir facturas."),
                Problem.CHECK_DIGIT: _(
                    "La homoclave o el dígito verificador de este RFC no son correctos."
                ),
            }.get(problem, _("El RFC debe tener 12 caracteres (persona moral) o 13 (física)."))
    person = None if "rfc" in errors else person_type(rfc)
    # Shorter than the CFDI's Nombre: the legal name goes in the subject of every invoice email.
    name_problem = check_nombre(form.legal_name.data, person, max_length=LEGAL_NAME_MAX)
    if name_problem is not None:
        errors["legal_name"] = {
            Problem.EMPTY: _("Escriba la razón social."),
            Problem.FORMAT: _("La razón social no puede llevar «|»."),
            Problem.TOO_LONG: _(
                "La razón social admite como máximo %(max)s caracteres (tiene %(count)s): debe "
                "caber, con la serie y el folio, en el asunto del correo de cada factura.",
                max=LEGAL_NAME_MAX,
                count=len(normalize_nombre(form.legal_name.data)),
            ),
            Problem.HAS_SUFFIX: _(
                "Escríbala sin el régimen societario (por ejemplo, sin «S.A. DE C.V.»), "
                "como en la Constancia de Situación Fiscal."
            ),
            Problem.NOT_UPPERCASE: _("Escriba la razón social en mayúsculas."),
        }[name_problem]
    regimen = (form.regimen.data or "").strip()
    if regimen not in catalogs.REGIMENES:
        errors["regimen"] = _("Elija un régimen fiscal del catálogo del SAT.")
    elif person is not None and regimen not in issuer_regimenes(person):
        errors["regimen"] = (
            _("Ese régimen no corresponde a una persona moral (RFC de 12 caracteres).")
            if person is PersonType.MORAL
            else _("Ese régimen no corresponde a una persona física (RFC de 13 caracteres).")
        )
    cp_problem = check_cp(form.cp.data)
    if cp_problem is not None:
        errors["cp"] = {
            Problem.EMPTY: _("Escriba el código postal."),
            Problem.FORMAT: _("El código postal tiene 5 dígitos."),
        }.get(cp_problem, _("Ese código postal no existe en el catálogo del SAT."))
    return errors


def normalized_legal_name(value: str | None) -> str:
    return normalize_nombre(value)


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


WINDOW_KINDS = [
    SelectChoice(WindowKind.SAME_MONTH.value, _l("Durante el mes de la compra")),
    SelectChoice(WindowKind.DAYS_AFTER.value, _l("Hasta N días después de la compra")),
    SelectChoice(WindowKind.UNTIL_DAY_NEXT_MONTH.value, _l("Hasta el día K del mes siguiente")),
]


class PolicyForm(FlaskForm):
    """What every issuer's invoicing policy has: the window to invoice a purchase in, and
    whether customers without an account may invoice."""

    window_kind = RadioField(_l("Plazo para facturar"), choices=WINDOW_KINDS, validate_choice=False)
    window_days = IntegerField(
        _l("Días después de la compra (N)"), render_kw={"min": 0, "max": MAX_DAYS_AFTER}
    )
    window_day = IntegerField(_l("Día del mes siguiente (K)"), render_kw={"min": 1, "max": 31})
    guest_invoicing = BooleanField(_l("Permitir facturar sin cuenta (se envía por correo)"))

    def fill_from(self, issuer: Issuer) -> None:
        """Values of `issuer` (on a GET); each subclass has the formas_pago of its catalog."""
        try:
            policy = parse_policy(issuer.window_policy)
        except ValueError:
            policy = WindowPolicy(WindowKind.UNTIL_DAY_NEXT_MONTH, 3)
        self.window_kind.data = policy.kind.value
        self.window_days.data = policy.days if policy.kind is WindowKind.DAYS_AFTER else 30
        self.window_day.data = policy.days if policy.kind is WindowKind.UNTIL_DAY_NEXT_MONTH else 3
        self.formas_pago.data = [c for c in issuer.formas_pago.split(",") if c]
        self.guest_invoicing.data = issuer.guest_invoicing


class BillingForm(PolicyForm):
    """A Mexican issuer's: serie and folio, SAT formas de pago, the factura global."""

    serie = StringField(_l("Serie"), filters=[_upper], render_kw={"maxlength": SERIE_MAX})
    next_folio = IntegerField(_l("Siguiente folio"), render_kw={"min": 1, "inputmode": "numeric"})
    formas_pago = CheckboxesField(
        _l("Formas de pago que el cliente puede elegir"),
        choices=[SelectChoice(c, f"{c} · {n}") for c, n in catalogs.FORMAS_PAGO.items()],
        validate_choice=False,
    )
    global_policy = RadioField(
        _l("Si el cliente factura un ticket que ya está en una factura global"),
        choices=[
            SelectChoice("flag", _l("Facturarlo y marcar la factura global para corregir")),
            SelectChoice("refuse", _l("No permitir facturarlo")),
        ],
        validate_choice=False,
    )
    global_periodicity = SelectField(
        _l("Periodicidad de la factura global"),
        choices=[SelectChoice(k, v) for k, v in PERIODICIDADES.items()],
        validate_choice=False,
    )

    def fill_from(self, issuer: Issuer) -> None:
        super().fill_from(issuer)
        self.serie.data, self.next_folio.data = issuer.serie, issuer.next_folio
        self.global_policy.data = issuer.global_policy
        self.global_periodicity.data = issuer.global_periodicity


class EcBillingForm(PolicyForm):
    """An Ecuadorian issuer's: SRI's formas de pago. No serie nor folio (each branch is an
    establecimiento and punto de emisión with its own secuencial) and no factura global (SRI
    has none)."""

    formas_pago = CheckboxesField(
        _l("Formas de pago que el cliente puede elegir"),
        choices=[SelectChoice(c, f"{c} · {n}") for c, n in sri_catalogs.FORMAS_PAGO.items()],
        validate_choice=False,
    )


def _check_window(form: PolicyForm, errors: dict[str, str]) -> str | None:
    """The window policy's column form when it is valid; else its message in `errors`."""
    kind = form.window_kind.data
    if kind == WindowKind.SAME_MONTH.value:
        return f"{kind}:0"
    if kind == WindowKind.DAYS_AFTER.value:
        days = form.window_days.data
        form.window_days.errors = []
        if days is None or not 0 <= days <= MAX_DAYS_AFTER:
            errors["window_days"] = _(
                "Escriba un número de días de 0 a %(max)s.", max=MAX_DAYS_AFTER
            )
            return None
        return f"{kind}:{days}"
    if kind == WindowKind.UNTIL_DAY_NEXT_MONTH.value:
        day = form.window_day.data
        form.window_day.errors = []
        if day is None or not 1 <= day <= 31:
            errors["window_day"] = _("Escriba un día del mes, de 1 a 31.")
            return None
        return f"{kind}:{day}"
    errors["window_kind"] = _("Elija cómo se mide el plazo para facturar.")
    return None


def check_billing(form: BillingForm, highest_folio) -> tuple[dict[str, str], str | None]:
    """Messages by field, and the window policy's column form when it is valid.

    `highest_folio(serie)` is the highest folio already used in that serie (0 for none).
    """
    errors: dict[str, str] = {}
    serie = form.serie.data or ""
    if len(serie) > SERIE_MAX:
        errors["serie"] = _(
            "La serie admite como máximo %(max)s caracteres (tiene %(count)s).",
            max=SERIE_MAX,
            count=len(serie),
        )
    elif not SERIE.fullmatch(serie):
        errors["serie"] = _(
            "La serie lleva de 1 a %(max)s letras, números o guiones.", max=SERIE_MAX
        )
    folio = form.next_folio.data
    if folio is None or not 1 <= folio <= MAX_FOLIO:
        form.next_folio.errors = []  # IntegerField's own English message
        errors["next_folio"] = _("Escriba un número entero positivo.")
    elif "serie" not in errors and folio <= (used := highest_folio(serie)):
        errors["next_folio"] = _(
            "El folio %(used)s de la serie %(serie)s ya se usó: el siguiente debe ser mayor.",
            used=used,
            serie=serie,
        )
    policy = _check_window(form, errors)
    chosen = form.formas_pago.data or []
    if not chosen:
        errors["formas_pago"] = _("Elija al menos una forma de pago.")
    elif any(c not in catalogs.FORMAS_PAGO for c in chosen):
        errors["formas_pago"] = _("Elija formas de pago del catálogo del SAT.")
    if form.global_policy.data not in ("flag", "refuse"):
        errors["global_policy"] = _("Elija qué hacer con los tickets en factura global.")
    if form.global_periodicity.data not in PERIODICIDADES:
        errors["global_periodicity"] = _("Elija una periodicidad del catálogo del SAT.")
    return errors, policy


def check_billing_ec(form: EcBillingForm) -> tuple[dict[str, str], str | None]:
    """An Ecuadorian issuer's policy: the window, and formas de pago of SRI's table."""
    errors: dict[str, str] = {}
    policy = _check_window(form, errors)
    chosen = form.formas_pago.data or []
    if not chosen:
        errors["formas_pago"] = _("Elija al menos una forma de pago.")
    elif any(c not in sri_catalogs.FORMAS_PAGO for c in chosen):
        errors["formas_pago"] = _("Elija formas de pago de la tabla del SRI.")
    return errors, policy


class CsdForm(FlaskForm):
    # Ids of their own: the dialog is shown over the page, which has other forms.
    cer = FileField(_l("Certificado (.cer)"), id="csd_cer", render_kw={"accept": ".cer"})
    key = FileField(_l("Llave privada (.key)"), id="csd_key", render_kw={"accept": ".key"})
    password = PasswordField(
        _l("Contraseña de la llave privada"), id="csd_password", render_kw={"autocomplete": "off"}
    )


PAC_LABELS = {
    "": _l("El de la plataforma"),
    "sandbox": _l("Pruebas (sin validez fiscal)"),
    "finkok": "Finkok",
    "sw": "SW Sapien",
}


class PacForm(FlaskForm):
    provider = RadioField(
        _l("Proveedor de timbrado (PAC)"),
        choices=[SelectChoice(name, PAC_LABELS[name]) for name in ("", *PACS)],
        validate_choice=False,
    )
    username = StringField(
        _l("Usuario (Finkok)"),
        id="pac_username",
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    password = PasswordField(
        _l("Contraseña (Finkok)"), id="pac_password", render_kw={"autocomplete": "off"}
    )
    token = PasswordField(_l("Token (SW)"), id="pac_token", render_kw={"autocomplete": "off"})


def check_pac(form: PacForm, stored_provider: str | None, has_credentials: bool):
    """(messages, credentials to store or None to keep the stored ones)."""
    provider = form.provider.data or ""
    if provider not in ("", *PACS):
        return {"provider": _("Elija un proveedor de la lista.")}, None
    errors: dict[str, str] = {}
    keep = provider == (stored_provider or "") and has_credentials
    if provider == "finkok":
        username, password = form.username.data or "", form.password.data or ""
        if username or password or not keep:
            if not username:
                errors["username"] = _("Escriba el usuario de Finkok.")
            if not password:
                errors["password"] = _("Escriba la contraseña de Finkok.")
            return errors, {"username": username, "password": password}
    elif provider == "sw":
        token = (form.token.data or "").strip()
        if token or not keep:
            if not token:
                errors["token"] = _("Escriba el token de SW.")
            return errors, {"token": token}
    else:
        return errors, {}
    return errors, None


class BrandForm(FlaskForm):
    logo = FileField(_l("Logotipo (PNG o SVG, hasta 50 KB)"), render_kw={"accept": ".png,.svg"})
    remove_logo = BooleanField(_l("Quitar el logotipo"))
    color = StringField(
        _l("Color principal"),
        filters=[_strip],
        render_kw={"maxlength": 7, "placeholder": "#0b5d3b", "spellcheck": "false"},
    )


# --- Ecuador (SRI) ------------------------------------------------------------------------

SRI_TEXT_MAX = 300
"""nombreComercial and dirMatriz in SRI's factura XSD: 1 to 300 characters, one line."""
SPECIAL_TAXPAYER = re.compile(r"[A-Za-z0-9]{3,13}")
"""contribuyenteEspecial in SRI's XSD: the resolution number, 3 to 13 letters or digits."""
_SPACES = re.compile(r"\s+")


def _one_line(value):
    """Trimmed, single spaces (line breaks and tabs become one space)."""
    return _SPACES.sub(" ", value).strip() if isinstance(value, str) else value


class EcFiscalForm(FlaskForm):
    """An Ecuadorian issuer's SRI data (infoTributaria and infoFactura of its facturas)."""

    ruc = StringField(
        _l("RUC"),
        filters=[_strip],
        render_kw={"maxlength": 13, "inputmode": "numeric", "autocomplete": "off"},
    )
    legal_name = StringField(
        _l("Razón social"), filters=[_one_line], render_kw={"maxlength": LEGAL_NAME_MAX}
    )
    trade_name = StringField(
        _l("Nombre comercial"), filters=[_one_line], render_kw={"maxlength": SRI_TEXT_MAX}
    )
    head_office_address = StringField(
        _l("Dirección matriz"), filters=[_one_line], render_kw={"maxlength": SRI_TEXT_MAX}
    )
    keeps_accounts = RadioField(
        _l("Obligado a llevar contabilidad"),
        choices=[SelectChoice(sri_catalogs.SI, _l("Sí")), SelectChoice(sri_catalogs.NO, _l("No"))],
        validate_choice=False,
    )
    special_taxpayer = StringField(
        _l("Contribuyente especial (número de resolución)"),
        filters=[_strip],
        render_kw={"maxlength": 13, "autocomplete": "off"},
    )
    rimpe = RadioField(
        _l("Régimen RIMPE"),
        choices=[
            SelectChoice("", _l("No pertenece al régimen RIMPE")),
            SelectChoice(sri_catalogs.RIMPE_EMPRENDEDOR, _l("RIMPE emprendedor")),
            SelectChoice(sri_catalogs.RIMPE_NEGOCIO_POPULAR, _l("RIMPE negocio popular")),
        ],
        validate_choice=False,
    )

    def fill_from(self, issuer: Issuer) -> None:
        """Values of `issuer` (on a GET)."""
        self.ruc.data, self.legal_name.data = issuer.rfc, issuer.legal_name
        self.trade_name.data = issuer.trade_name or ""
        self.head_office_address.data = issuer.head_office_address or ""
        self.keeps_accounts.data = sri_catalogs.SI if issuer.keeps_accounts else sri_catalogs.NO
        self.special_taxpayer.data = issuer.special_taxpayer or ""
        self.rimpe.data = issuer.rimpe or ""


def _text_problem(value: str, limit: int, too_long) -> str | None:
    problem = check_text(value, limit, pipe=True)
    if problem is TextProblem.TOO_LONG:
        return f"{too_long} {_(TEXT_MESSAGES[problem], max=limit)}"
    return _(TEXT_MESSAGES[problem]) if problem is not None else None


def check_fiscal_ec(form: EcFiscalForm, may_change_ruc: bool) -> dict[str, str]:
    """SRI's rules for the issuer's data: the RUC (when it may change) passes stdnum's
    check, the razón social and dirección matriz are given, the rest within SRI's XSD."""
    errors: dict[str, str] = {}
    if may_change_ruc:
        ruc = form.ruc.data or ""
        if not ruc:
            errors["ruc"] = _("Escriba el RUC del emisor.")
        elif not re.fullmatch(r"\d{13}", ruc):
            errors["ruc"] = _("El RUC tiene 13 dígitos, sin espacios ni guiones.")
        elif not ruc.endswith("001"):
            errors["ruc"] = _("El RUC del contribuyente termina en 001.")
        elif not ec_ruc.is_valid(ruc):
            errors["ruc"] = _(
                "Este RUC no es válido: revise los dígitos (el verificador no coincide o la "
                "provincia o el tipo de contribuyente no existen)."
            )
    legal_name = form.legal_name.data or ""
    if not legal_name:
        errors["legal_name"] = _("Escriba la razón social, como en el RUC.")
    elif problem := _text_problem(
        legal_name,
        LEGAL_NAME_MAX,
        _(
            "La razón social es demasiado larga: debe caber en el asunto del correo de cada "
            "factura."
        ),
    ):
        errors["legal_name"] = problem
    if problem := _text_problem(
        form.trade_name.data, SRI_TEXT_MAX, _("El nombre comercial es demasiado largo.")
    ):
        errors["trade_name"] = problem
    address = form.head_office_address.data or ""
    if not address:
        errors["head_office_address"] = _("Escriba la dirección de la matriz, como en el RUC.")
    elif problem := _text_problem(
        address, SRI_TEXT_MAX, _("La dirección matriz es demasiado larga.")
    ):
        errors["head_office_address"] = problem
    if form.keeps_accounts.data not in (sri_catalogs.SI, sri_catalogs.NO):
        errors["keeps_accounts"] = _("Indique si está obligado a llevar contabilidad.")
    special = form.special_taxpayer.data or ""
    if special and not SPECIAL_TAXPAYER.fullmatch(special):
        errors["special_taxpayer"] = _(
            "El número de resolución de contribuyente especial lleva de 3 a 13 letras o "
            "números, sin espacios ni guiones. Déjelo vacío si no es contribuyente especial."
        )
    if (form.rimpe.data or "") not in ("", *sri_catalogs.RIMPE):
        errors["rimpe"] = _("Elija una opción de la lista.")
    return errors


class P12Form(FlaskForm):
    # Ids of their own: the dialog is shown over the page, which has other forms.
    p12 = FileField(
        _l("Archivo de firma electrónica (.p12)"),
        id="p12_file",
        render_kw={"accept": ".p12,.pfx"},
    )
    password = PasswordField(
        _l("Contraseña de la firma electrónica"),
        id="p12_password",
        render_kw={"autocomplete": "off"},
    )
