"""Forms of the flow. One `check_*` per form runs every rule; the full submit and the inline
validation of a single field call the same function."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import EmailField, HiddenField, RadioField, SelectField, StringField
from wtforms.validators import Regexp, ValidationError

from webapp.fiscal import catalogs, ec_buyer, matrix
from webapp.fiscal.limits import CP_LENGTH, NOMBRE_MAX
from webapp.fiscal.receptor import Receptor, check_receptor, normalize_nombre
from webapp.fiscal.rfc import PersonType, check_rfc, person_type
from webapp.fiscal.ticket_input import normalize_number, parse_total
from webapp.invoicing import messages
from webapp.invoicing.widgets import EmailInput, HiddenInput, Select, TextInput
from webapp.issuing.lookup import TicketCheck, TicketProblem, check_ticket
from webapp.mail import validate_address
from webapp.models import Branch, Issuer, Ticket
from webapp.sri import catalogs as sri_catalogs
from webapp.tickets.payment import predominant

TICKET_FIELDS = ("order_number", "ticket_number", "total")
# Answers that the ticket as typed is not there: what someone guessing numbers learns from.
MISSES = frozenset(
    {TicketProblem.NOT_FOUND, TicketProblem.ORDER_MISMATCH, TicketProblem.TOTAL_MISMATCH}
)
RECEPTOR_FIELDS = ("nombre", "cp", "regimen", "uso_cfdi", "email")
# An Ecuadorian issuer's buyer (SRI comprador): the identification is asked at the RFC step.
EC_BUYER_FIELDS = ("nombre", "direccion", "email")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class Form(FlaskForm):
    """On a kiosk, no field offers or keeps the browser's saved values (a shared screen)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from webapp.kiosk.web import current as on_kiosk

        if on_kiosk() is not None:
            for f in self:
                if f.type not in ("HiddenField", "CSRFTokenField"):
                    f.render_kw = {**(f.render_kw or {}), "autocomplete": "off"}


class BranchForm(FlaskForm):
    branch = RadioField(_l("Sucursal"), choices=[], validate_choice=False)


class RfcForm(Form):
    rfc = StringField(
        _l("RFC"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "maxlength": 20,
            "spellcheck": "false",
        },
    )


class TicketForm(Form):
    order_number = StringField(
        _l("Número de orden"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 40},
    )
    ticket_number = StringField(
        _l("Número de ticket"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 40},
    )
    total = StringField(
        _l("Total del ticket"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"inputmode": "decimal", "autocomplete": "off", "maxlength": 20},
    )
    forma_pago = SelectField(
        _l("Forma de pago"), choices=[], validate_choice=False, widget=Select()
    )
    nombre = StringField(
        _l("Nombre o razón social"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={
            "autocomplete": "name",
            "autocapitalize": "characters",
            "maxlength": NOMBRE_MAX,
        },
    )
    cp = StringField(
        _l("Código postal"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={
            "inputmode": "numeric",
            "autocomplete": "postal-code",
            "maxlength": CP_LENGTH,
        },
    )
    regimen = SelectField(_l("Régimen fiscal"), choices=[], validate_choice=False, widget=Select())
    uso_cfdi = SelectField(_l("Uso del CFDI"), choices=[], validate_choice=False, widget=Select())
    email = EmailField(
        _l("Correo electrónico"),
        filters=[_strip],
        widget=EmailInput(),
        render_kw={"autocomplete": "email", "maxlength": 254},
    )
    key = HiddenField(  # Invoice.idempotency_key
        validators=[Regexp(r"[A-Za-z0-9_-]{0,64}\Z")], widget=HiddenInput()
    )

    def fill_choices(self, issuer: Issuer, rfc: str) -> None:
        """Offer only valid choices: the issuer's formas de pago, the régimenes of the RFC's
        person type, and the usos allowed for the chosen régimen (all of the person type's
        usos until one is chosen)."""
        self.forma_pago.choices = _formas_pago_choices(issuer.formas_pago)
        fill_receptor_choices(self, rfc)

    def preselect_forma_pago(self, issuer: Issuer, tickets: list[Ticket]) -> None:
        """Choose the forma de pago the tickets record (of several, the one of the greatest
        amount), when the issuer offers it; the customer may still change it."""
        recorded = predominant((t.forma_pago, t.total) for t in tickets if t.forma_pago)
        if recorded in issuer.formas_pago.split(","):
            self.forma_pago.data = recorded


def is_ec(issuer: Issuer) -> bool:
    """Whether `issuer` invoices under Ecuador's SRI rules (else Mexico's SAT)."""
    return issuer.country == "EC"


class IdentificationForm(Form):
    """The RFC step of an Ecuadorian issuer: the buyer's tipo de identificación and number."""

    id_type = SelectField(
        _l("Tipo de identificación"), choices=[], validate_choice=False, widget=Select()
    )
    identificacion = StringField(
        _l("Identificación"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "maxlength": 30,
            "spellcheck": "false",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.id_type.choices = _id_type_choices()


@functools.cache
def _id_type_choices() -> tuple[tuple[str, str], ...]:
    return (("", _l("Elija…")),) + tuple(sri_catalogs.TIPOS_IDENTIFICACION.items())


class EcTicketForm(Form):
    """The ticket step of an Ecuadorian issuer: the same ticket fields, then the buyer's
    razón social, dirección and email (no CP, régimen nor uso) and an SRI forma de pago."""

    order_number = TicketForm.order_number
    ticket_number = TicketForm.ticket_number
    total = TicketForm.total
    forma_pago = TicketForm.forma_pago
    nombre = StringField(
        _l("Razón social / Nombres y apellidos"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"autocomplete": "name", "maxlength": NOMBRE_MAX},
    )
    direccion = StringField(
        _l("Dirección"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"autocomplete": "street-address", "maxlength": ec_buyer.DIRECCION_MAX},
    )
    email = TicketForm.email
    key = TicketForm.key

    def fill_choices(self, issuer: Issuer, rfc: str) -> None:
        """The issuer's formas de pago, SRI's codes with SRI's names."""
        self.forma_pago.choices = _sri_formas_pago_choices(issuer.formas_pago)

    preselect_forma_pago = TicketForm.preselect_forma_pago


def ticket_form(issuer: Issuer, **kwargs) -> TicketForm | EcTicketForm:
    """The ticket step's form for the issuer's country."""
    return EcTicketForm(**kwargs) if is_ec(issuer) else TicketForm(**kwargs)


def buyer_fields(issuer: Issuer) -> tuple[str, ...]:
    """The ticket step's fields about the customer, checked inline one by one."""
    return EC_BUYER_FIELDS if is_ec(issuer) else RECEPTOR_FIELDS


@functools.lru_cache(maxsize=64)
def _sri_formas_pago_choices(formas_pago: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (code, f"{code} · {sri_catalogs.FORMAS_PAGO.get(code, code)}")
        for code in formas_pago.split(",")
    )


# The choices below are built once per process: the catalogs do not change while it runs, and
# "Elija…" is a lazy string, translated when the select is rendered. Tuples: shared, never
# changed in place.


@functools.lru_cache(maxsize=64)
def _formas_pago_choices(formas_pago: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (code, f"{code} · {catalogs.FORMAS_PAGO.get(code, code)}")
        for code in formas_pago.split(",")
    )


@functools.cache
def _receptor_choices(person: PersonType, chosen: str | None) -> tuple[tuple, tuple]:
    """The régimen choices of a person type, and the uso choices of the régimen chosen (of
    all the person type's régimenes when none is)."""
    regimenes = matrix.regimenes_for(person)
    usos = (
        matrix.usos_for(chosen)
        if chosen
        else sorted({u for r in regimenes for u in matrix.usos_for(r)})
    )
    return (
        (("", _l("Elija…")),)
        + tuple((code, f"{code} · {catalogs.REGIMENES.get(code, code)}") for code in regimenes),
        (("", _l("Elija…")),)
        + tuple((code, f"{code} · {catalogs.USOS_CFDI.get(code, code)}") for code in usos),
    )


def fill_receptor_choices(form: FlaskForm, rfc: str) -> None:
    """On any form with `regimen` and `uso_cfdi` selects: the régimenes of the RFC's person
    type, and the usos allowed for the chosen régimen (all of the person type's usos until one
    is chosen)."""
    person = person_type(rfc)
    chosen = form.regimen.data if form.regimen.data in matrix.regimenes_for(person) else None
    form.regimen.choices, form.uso_cfdi.choices = _receptor_choices(person, chosen)


def check_rfc_form(form: RfcForm) -> str | None:
    """The normalised RFC, or None with the problem on the field."""
    rfc, problem = check_rfc(form.rfc.data or "")
    if problem is not None:
        form.rfc.errors = [messages.fiscal_message("rfc", problem)]
        return None
    form.rfc.data = rfc
    return rfc


def check_identification_form(form: IdentificationForm) -> tuple[str, str] | None:
    """The tipo de identificación and the normalised identification, or None with the problems
    on the fields. A consumidor final's identification is filled in (it is fixed)."""
    id_type = form.id_type.data or ""
    if problem := ec_buyer.check_id_type(id_type):
        form.id_type.errors = [messages.ec_message("id_type", problem)]
        return None
    form.identificacion.data = ec_buyer.normalize_identificacion(id_type, form.identificacion.data)
    if problem := ec_buyer.check_identificacion(id_type, form.identificacion.data):
        form.identificacion.errors = [messages.ec_message("identificacion", problem, id_type)]
        return None
    return form.identificacion.data, id_type


@dataclass
class TicketOutcome:
    """Everything the ticket form's checks found."""

    check: TicketCheck | None = None
    receptor: Receptor | None = None
    email: str | None = None
    errors: dict[str, object] = field(default_factory=dict)
    typed: tuple[str, str, str] | None = None  # the ticket looked up: number, order, total

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def missed(self) -> bool:
        """The lookup answered that the ticket as typed is not there."""
        return self.check is not None and any(p in MISSES for p in self.check.problems.values())

    @property
    def matched(self) -> bool:
        """Number, order number and total all typed and all those of a ticket."""
        return (
            self.check is not None
            and self.check.ticket is not None
            and not self.missed
            and self.typed is not None
            and all(self.typed)
        )


def check_ticket_fields(
    form: TicketForm,
    session: Session,
    branch: Branch,
    now: datetime,
    added: frozenset[int],
    required: bool,
    lookup: bool = True,
) -> TicketOutcome:
    """Order number, ticket number and total: typos normalised, then checked against the
    ticket. With `required` False (tickets already added), empty fields are no error. With
    `lookup` False only their form is checked (no verdict on whether the ticket exists)."""
    out = TicketOutcome()
    raw = {name: (form[name].data or "") for name in TICKET_FIELDS}
    if not required and not any(raw.values()):
        return out
    numbers = {}
    for name in ("order_number", "ticket_number"):
        value = normalize_number(raw[name])
        if not value:
            out.errors[name] = messages.REQUIRED[name]
        elif not value.isdigit() or len(value) > 40:
            out.errors[name] = messages.DIGITS_ONLY
        else:
            numbers[name] = value
            form[name].data = value
    total = parse_total(raw["total"]) if raw["total"] else None
    if not raw["total"]:
        out.errors["total"] = messages.REQUIRED["total"]
    elif total is None:
        out.errors["total"] = messages.BAD_TOTAL
    else:
        form.total.data = f"{total:.2f}"
    if "ticket_number" in numbers and lookup:
        out.typed = (
            numbers["ticket_number"],
            numbers.get("order_number", ""),
            f"{total:.2f}" if total is not None else "",
        )
        out.check = check_ticket(
            session,
            branch,
            ticket_number=numbers["ticket_number"],
            order_number=numbers.get("order_number"),
            total=total,
            now=now,
            already_added=added,
        )
        for name, problem in out.check.problems.items():
            out.errors.setdefault(name, messages.TICKET[problem])
    return out


def check_receptor_data(form: FlaskForm, rfc: str) -> tuple[Receptor | None, dict[str, object]]:
    """Nombre, CP, régimen and uso of any form with those fields, with the fiscal rules: the
    normalised Receptor, or None; and the messages by field name."""
    form.nombre.data = form.nombre.data or ""
    receptor = Receptor(
        rfc=rfc,
        nombre=form.nombre.data,
        cp=form.cp.data or "",
        regimen=form.regimen.data or "",
        uso_cfdi=form.uso_cfdi.data or "",
    )
    errors = {
        name: messages.fiscal_message(name, problem)
        for name, problem in check_receptor(receptor).items()
        if name != "rfc"
    }
    if errors:
        return None, errors
    return Receptor(
        rfc=rfc,
        nombre=normalize_nombre(receptor.nombre),
        cp=receptor.cp,
        regimen=receptor.regimen,
        uso_cfdi=receptor.uso_cfdi,
    ), errors


def check_receptor_fields(form: TicketForm, rfc: str, issuer: Issuer, out: TicketOutcome):
    """Receptor data and forma de pago, with the fiscal rules, next to each field."""
    out.receptor, errors = check_receptor_data(form, rfc)
    out.errors.update(errors)
    _check_forma_pago_and_email(form, issuer, out)
    return out


def _check_forma_pago_and_email(form, issuer: Issuer, out: TicketOutcome) -> None:
    if not form.forma_pago.data:
        out.errors["forma_pago"] = messages.REQUIRED["forma_pago"]
    elif form.forma_pago.data not in issuer.formas_pago.split(","):
        out.errors["forma_pago"] = messages.BAD_FORMA_PAGO
    if not form.email.data:
        out.errors["email"] = messages.REQUIRED["email"]
    else:
        try:
            out.email = validate_address(form.email.data)
        except ValueError:
            out.errors["email"] = messages.BAD_EMAIL


def check_ec_buyer_fields(
    form: EcTicketForm,
    identification: tuple[str, str],
    issuer: Issuer,
    out: TicketOutcome,
    added: list[Ticket],
) -> TicketOutcome:
    """An Ecuadorian buyer's data, forma de pago and email, next to each field; and the
    consumidor final's limit on the invoice's total (the tickets added and the one typed),
    next to the total. `identification`: (number, tipo) from the RFC step."""
    numero, id_type = identification
    total = sum((t.total for t in added), Decimal(0))
    typed = parse_total(form.total.data or "") if form.total.data else None
    if typed is not None and "total" not in out.errors:
        total += typed
    problems = ec_buyer.check_buyer(id_type, numero, form.nombre.data, form.direccion.data, total)
    for name, problem in problems.items():
        if name == "total":
            out.errors["total"] = messages.ec_message("total", problem, id_type)
        elif name in ("nombre", "direccion"):
            out.errors[name] = messages.ec_message(name, problem, id_type)
        else:  # the identification changed its rules under the customer: ask for it again
            out.errors["nombre"] = messages.ec_message("identificacion", problem, id_type)
    if not problems:
        out.receptor = ec_buyer.receptor(id_type, numero, form.nombre.data, form.direccion.data)
    _check_forma_pago_and_email(form, issuer, out)
    return out


def check_buyer_fields(form, identification: tuple[str, str], issuer, out, added):
    """The customer's data of the ticket step, by the issuer's country (see the two checks)."""
    if is_ec(issuer):
        return check_ec_buyer_fields(form, identification, issuer, out, added)
    return check_receptor_fields(form, identification[0], issuer, out)


def show(form: FlaskForm, errors: dict[str, object], only: tuple[str, ...] | None = None):
    """Put the found problems on the form's fields (all of them, or `only` those)."""
    for name, message in errors.items():
        if only is None or name in only:
            form[name].errors = [message]


class EmailForm(Form):
    email = StringField(
        _l("Enviar a"),
        filters=[_strip],
        widget=TextInput(),
        render_kw={"autocomplete": "email", "maxlength": 600, "inputmode": "email"},
    )
    addresses: list[str]

    def validate_email(self, field) -> None:
        parts = [p for p in (field.data or "").replace(";", ",").split(",") if p.strip()]
        if not parts:
            raise ValidationError(messages.REQUIRED["email"])
        most = current_app.config["INVOICE_MAIL_MAX_RECIPIENTS"]
        if len(parts) > most:
            raise ValidationError(
                _l("Escriba como máximo %(n)s correos, separados por comas.", n=most)
            )
        try:
            self.addresses = [validate_address(p) for p in parts]
        except ValueError:
            raise ValidationError(messages.BAD_EMAIL) from None
