"""The provider's data of a services issuer, as its billing system sends it (the JSON API,
webapp.api.services, and the CSV upload, webapp.billing.csvfile): service types, plans,
service accounts with their lines, charges and payments.

Each `put_*` validates one payload (a dict, as the API receives it and the CSV reader builds
it) and upserts it by its natural key in a SAVEPOINT of the caller's transaction:

- service type and plan: issuer + code; service account: issuer + number; line: issuer +
  number (a phone number in E.164 for the service types of kind "phone", a contract number
  otherwise); charge and payment: issuer + external_id.
- The same payload again is "unchanged"; other content updates the row ("updated"), except
  a charge already on a bill (bill_id set) and a payment, which are facts the statements are
  made of: other content for them is a "conflict" and nothing changes.
- Fields left out take their defaults (the payload is the whole record, like a PUT).

Errors are per field, with machine-readable paths ("lines[0].plan", "fiscal.cp") and Spanish
msgids (webapp.i18n_marker.N_), translated where they are shown.

The issuer's country chooses the values (CountryRules, one code path):

- Mexico (SAT): IVA 0.160000 (default), 0.080000, 0.000000 or null (exento); holder_id the
  holder's RFC; fiscal = RFC, name, cp, régimen and uso, all five checked against SAT's
  catalogs; forma_pago a c_FormaPago; clave_prod_serv/clave_unidad in SAT's catalogs.
- Ecuador (SRI): IVA 0.150000 (default), 0.050000, 0.000000 or null (exento), the rates
  webapp.issuing.sri_invoice.codigo_porcentaje turns into SRI codes 4, 5, 0 and 7; holder_id
  a cédula (10 digits, its check digit valid) or a passport; fiscal = the RUC (`rfc`, 13
  digits ending in 001) and the razón social (`name`) only: cp, regimen and uso are SAT's and
  must be absent, null or empty (a value is refused, so that a provider's mapping error
  does not pass unnoticed); forma_pago one of SRI's formas de pago; clave_prod_serv and
  clave_unidad are SAT's codes an SRI factura does not carry (they are only stored on the
  bill's ticket lines): absent takes the defaults, any short code of letters and digits is
  kept.
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.ec import ci as ec_ci

from webapp.fiscal.limits import DESCRIPCION_MAX, NOMBRE_MAX, TextProblem, check_text
from webapp.fiscal.problems import Problem
from webapp.fiscal.receptor import Receptor, check_receptor, normalize_nombre
from webapp.fiscal.rfc import check_rfc
from webapp.i18n_marker import N_
from webapp.mail.outbox import validate_address
from webapp.models import (
    AccountStatus,
    Charge,
    Issuer,
    LineHolder,
    LineKind,
    Payment,
    Plan,
    ServiceAccount,
    ServiceLine,
    ServiceType,
)
from webapp.sms.outbox import normalise_number
from webapp.sri import catalogs as sri_catalogs
from webapp.tickets.payment import TICKET_FORMAS_PAGO
from webapp.tickets.validate import (
    BAD_CLAVE_PROD,
    BAD_CLAVE_UNIDAD,
    BAD_QUANTITY,
    FUTURE_SKEW,
    NOT_OBJECT,
    NOT_TEXT,
    REQUIRED,
    UNKNOWN_CLAVE_PROD,
    UNKNOWN_CLAVE_UNIDAD,
    UNKNOWN_FIELD,
    FieldError,
    clave_prod_serv_exists,
    clave_unidad_exists,
    parse_sold_at,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "CHARGE_FIELDS",
    "FISCAL_FIELDS",
    "LINE_FIELDS",
    "NESTED_LINE_FIELDS",
    "CountryRules",
    "Outcome",
    "PAYMENT_FIELDS",
    "PLAN_FIELDS",
    "Result",
    "SERVICE_TYPE_FIELDS",
    "account_json",
    "charge_json",
    "find_account",
    "is_services",
    "line_json",
    "payment_json",
    "plan_json",
    "put_account",
    "put_charge",
    "put_line",
    "put_payment",
    "put_plan",
    "put_service_type",
    "rules_for",
    "service_type_json",
]

SERVICES = "services"

# --- Limits (the columns of webapp.models.services) -----------------------------------------

CODE_PATTERN = r"[A-Z0-9][A-Z0-9_-]{0,19}"  # ServiceType.code, Plan.code
NUMBER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}"  # account and contract numbers
EXTERNAL_ID_PATTERN = r"[!-~]{1,64}"  # visible ASCII
PERIOD_PATTERN = r"20[0-9]{2}-(0[1-9]|1[0-2])"
DECIMAL6_PATTERN = r"[0-9]{1,12}(\.[0-9]{1,6})?"
AMOUNT_PATTERN = r"[0-9]{1,12}(\.[0-9]{1,2})?"
RATE_PATTERN = r"0\.[0-9]{1,6}"
PASSPORT_PATTERN = r"[A-Z0-9][A-Z0-9-]{2,19}"  # Ecuador: a passport SRI takes (3 to 20)
CEDULA_PATTERN = r"[0-9]{10}"  # Ecuador: ten digits are a cédula (stdnum.ec.ci)
PHONE_INPUT_MAX = 32  # webapp.sms.outbox.NUMBER_INPUT_MAX
TYPE_NAME_MAX = 60
PLAN_NAME_MAX = 120
EMAIL_MAX = 254
REFERENCE_MAX = 120
MAX_NESTED_LINES = 200
RATES = ("0.160000", "0.080000", "0.000000")
DEFAULT_RATE = Decimal("0.160000")
DEFAULT_CLAVE_PROD = "81161700"  # Servicios de telecomunicaciones móviles... (SAT)
DEFAULT_CLAVE_UNIDAD = "E48"  # Unidad de servicio
FORMAS_PAGO = TICKET_FORMAS_PAGO  # c_FormaPago but 99 (por definir): the payment was made
# Ecuador (SRI): the IVA rates webapp.issuing.sri_invoice.codigo_porcentaje maps to SRI codes
# 4 (15 %), 5 (5 %) and 0 (0 %); null is exento (7).
EC_RATES = ("0.150000", "0.050000", "0.000000")
EC_DEFAULT_RATE = Decimal("0.150000")
EC_FORMAS_PAGO = tuple(sri_catalogs.FORMAS_PAGO)
EC_FISCAL_FIELDS = ("rfc", "name")  # the RUC and the razón social

_CODE = re.compile(CODE_PATTERN)
_NUMBER = re.compile(NUMBER_PATTERN)
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
_PERIOD = re.compile(PERIOD_PATTERN)
_DECIMAL6 = re.compile(DECIMAL6_PATTERN)
_AMOUNT = re.compile(AMOUNT_PATTERN)
_RATE = re.compile(RATE_PATTERN)
_PASSPORT = re.compile(PASSPORT_PATTERN)
_CEDULA = re.compile(CEDULA_PATTERN)
_ANY_CLAVE_PROD = re.compile(r"[A-Za-z0-9]{1,8}")  # Ecuador: only stored (String(8))
_ANY_CLAVE_UNIDAD = re.compile(r"[A-Za-z0-9]{1,3}")  # Ecuador: only stored (String(3))
_CLAVE_PROD = re.compile(r"[0-9]{8}")
_CLAVE_UNIDAD = re.compile(r"[A-Z0-9]{1,3}")

# --- The fields of each payload ---------------------------------------------------------------

SERVICE_TYPE_FIELDS = ("code", "name", "line_kind")
PLAN_FIELDS = (
    "code",
    "service_type",
    "name",
    "monthly_fee",
    "tax_rate",
    "clave_prod_serv",
    "clave_unidad",
    "active",
)
FISCAL_FIELDS = ("rfc", "name", "cp", "regimen", "uso")
ACCOUNT_FIELDS = (
    "number",
    "holder_name",
    "holder_id",
    "fiscal",
    "email",
    "contact_mobile",
    "billing_day",
    "status",
    "lines",
)
NESTED_LINE_FIELDS = ("number", "service_type", "plan", "status")
LINE_FIELDS = ("number", "account", "service_type", "plan", "status")
CHARGE_FIELDS = (
    "external_id",
    "account",
    "line",
    "period",
    "description",
    "quantity",
    "unit_price",
    "tax_rate",
    "clave_prod_serv",
    "clave_unidad",
)
PAYMENT_FIELDS = ("external_id", "account", "amount", "received_at", "forma_pago", "reference")

# --- Messages (es-MX msgids) ------------------------------------------------------------------

BAD_CODE = N_("Clave de 1 a 20 caracteres: mayúsculas, dígitos, «-» o «_», p. ej. M-5GB.")
BAD_NUMBER = N_("Número de 1 a 40 caracteres: letras, dígitos, «.», «-», «_» o «/», sin espacios.")
BAD_LINE_KIND = N_("Tipo de línea «phone» (número de teléfono) o «contract» (contrato).")
BAD_STATUS = N_("Estado «active», «suspended» o «closed».")
BAD_BOOL = N_("Debe ser true o false.")
BAD_FEE = N_('Cuota mensual antes de impuestos, con hasta seis decimales, como texto: "172.41".')
BAD_SERVICE_RATE = N_("Tasa de IVA «0.160000», «0.080000» o «0.000000», o null si está exento.")
BAD_SERVICE_RATE_EC = N_(
    "Tarifa de IVA del SRI: «0.150000» (la general), «0.050000» o «0.000000», o null si está "
    "exento."
)
BAD_CLAVE_PROD_EC = N_(
    "Código del producto o servicio de 1 a 8 letras o dígitos (opcional; 81161700 si se omite)."
)
BAD_CLAVE_UNIDAD_EC = N_("Código de unidad de 1 a 3 letras o dígitos (opcional; E48 si se omite).")
BAD_UNIT_PRICE = N_(
    "Precio unitario antes de impuestos, mayor o igual que cero, con hasta seis decimales, "
    'como texto: "49.99".'
)
UNKNOWN_TYPE = N_("No hay un tipo de servicio con la clave «%(code)s».")
UNKNOWN_PLAN = N_("No hay un plan con la clave «%(code)s».")
PLAN_OTHER_TYPE = N_("El plan «%(code)s» es de otro tipo de servicio.")
PLAN_INACTIVE = N_("El plan «%(code)s» está desactivado; no se pueden agregar líneas a él.")
TYPE_HAS_LINES = N_(
    "El tipo de servicio ya tiene líneas: su tipo de línea (teléfono o contrato) no se cambia."
)
PLAN_TYPE_FIXED = N_("El plan ya tiene líneas: su tipo de servicio no se cambia.")
UNKNOWN_ACCOUNT = N_("No hay una cuenta de servicio con el número «%(number)s».")
UNKNOWN_LINE = N_("La cuenta no tiene una línea con el número «%(number)s».")
BAD_HOLDER_ID_EC = N_(
    "Identificación del titular: cédula de 10 dígitos o pasaporte de 3 a 20 caracteres "
    "(letras mayúsculas, dígitos o «-»)."
)
BAD_CEDULA = N_("Ese número de cédula no es válido: revise los 10 dígitos.")
BAD_BILLING_DAY = N_("Día de corte: un número entero del 1 al 28.")
BAD_EMAIL = N_("Correo electrónico no válido, p. ej. nombre@dominio.com.")
BAD_MOBILE = N_(
    "Número celular de México (10 dígitos, p. ej. 55 1234 5678 o +52 55 1234 5678) o de "
    "Ecuador (+593 9…)."
)
BAD_PHONE_LINE = N_(
    "Número de teléfono de la línea: 10 dígitos de México (p. ej. 55 1234 5678 o "
    "+52 55 1234 5678) o un celular de Ecuador (+593 9…)."
)
FISCAL_INCOMPLETE = N_(
    "Los datos fiscales van completos (RFC, nombre, código postal, régimen y uso del CFDI) "
    "o no van."
)
FISCAL_INCOMPLETE_EC = N_("Los datos fiscales van completos (RUC y razón social) o no van.")
BAD_RUC = N_(
    "El RUC no es válido: 13 dígitos que terminan en 001, con su dígito verificador correcto."
)
FISCAL_NOT_EC = N_(
    "En Ecuador los datos fiscales son sólo el RUC y la razón social: omita este campo (es del "
    "SAT de México)."
)
NOT_LIST = N_("Debe ser una lista.")
TOO_MANY_LINES = N_("Una cuenta admite hasta %(n)s líneas por envío.")
LINE_REPEATED = N_("La línea %(number)s aparece dos veces.")
BAD_EXTERNAL_ID = N_("Identificador de 1 a 64 caracteres ASCII visibles, sin espacios.")
LINES_RACED = N_("Otra solicitud cambió estas líneas a la vez; envíelas de nuevo.")
BAD_PERIOD = N_("Periodo AAAA-MM, p. ej. 2026-05.")
BAD_AMOUNT = N_('Importe mayor que cero, con hasta dos decimales, como texto: "349.00".')
BAD_FORMA_PAGO = N_(
    "Clave de forma de pago del SAT (c_FormaPago), p. ej. 01 (efectivo), 03 (transferencia) "
    "o 04 (tarjeta de crédito); 99 (por definir) no se acepta en un pago recibido."
)
BAD_FORMA_PAGO_EC = N_(
    "Forma de pago del SRI, p. ej. 01 (sin utilización del sistema financiero), 16 (tarjeta de "
    "débito), 19 (tarjeta de crédito) o 20 (otros con utilización del sistema financiero)."
)
FUTURE_PAYMENT = N_("La fecha del pago está en el futuro.")
CHARGE_BILLED = N_(
    "El cargo %(external_id)s ya está en una factura del periodo %(period)s y no se modifica; "
    "envíe un cargo nuevo (otro external_id) para corregirlo en el siguiente periodo."
)
PAYMENT_EXISTS = N_(
    "El pago %(external_id)s ya está registrado con otro contenido; un pago registrado no se "
    "modifica."
)
TEXT_TOO_LONG = N_("Máximo %(max)s caracteres.")
TEXT_PIPE = N_("No puede contener el carácter «|».")
TEXT_CONTROL = N_("No puede contener caracteres de control, como saltos de línea o tabuladores.")

# Receptor problems by (field, code), as webapp.invoicing.messages words them for customers.
FISCAL_MESSAGES = {
    ("rfc", Problem.FORMAT): N_(
        "El RFC no tiene el formato correcto: 12 caracteres para personas morales y 13 para "
        "personas físicas."
    ),
    ("rfc", Problem.CHECK_DIGIT): N_(
        "El RFC no es válido: revise cada carácter; el último es un dígito verificador."
    ),
    ("rfc", Problem.GENERIC): N_(
        "Un RFC genérico (XAXX010101000, XEXX010101000) no recibe facturas: omita los datos "
        "fiscales."
    ),
    ("name", Problem.HAS_SUFFIX): N_(
        "Escriba la razón social sin el régimen societario (por ejemplo, sin «S.A. DE C.V.»), "
        "como aparece en su Constancia de Situación Fiscal."
    ),
    ("name", Problem.TOO_LONG): TEXT_TOO_LONG,
    ("name", Problem.FORMAT): TEXT_PIPE,
    ("cp", Problem.FORMAT): N_("El código postal tiene 5 dígitos."),
    ("cp", Problem.UNKNOWN): N_(
        "Ese código postal no está en el catálogo del SAT. Use el de su Constancia de Situación "
        "Fiscal."
    ),
    ("regimen", Problem.UNKNOWN): N_(
        "Clave de régimen fiscal del SAT (c_RegimenFiscal), p. ej. 612."
    ),
    ("regimen", Problem.WRONG_PERSON_TYPE): N_(
        "Ese régimen fiscal no corresponde al tipo de persona de su RFC (12 caracteres: moral; "
        "13: física)."
    ),
    ("regimen", Problem.NOT_FOR_RECEPTOR): N_(
        "Ese régimen fiscal no puede recibir facturas de ningún uso. Revise su Constancia de "
        "Situación Fiscal."
    ),
    ("uso", Problem.UNKNOWN): N_("Clave de uso del CFDI del SAT (c_UsoCFDI), p. ej. G03."),
    ("uso", Problem.NOT_FOR_REGIMEN): N_(
        "Ese uso del CFDI no está permitido para el régimen fiscal elegido."
    ),
}
_RECEPTOR_FIELDS = {"rfc": "rfc", "nombre": "name", "cp": "cp", "regimen": "regimen"}
_RECEPTOR_FIELDS["uso_cfdi"] = "uso"
_TEXT_MESSAGES = {
    TextProblem.TOO_LONG: TEXT_TOO_LONG,
    TextProblem.PIPE: TEXT_PIPE,
    TextProblem.CONTROL: TEXT_CONTROL,
}


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # the same content, already stored: nothing done
    CONFLICT = "conflict"  # a billed charge or a payment with other content: refused
    REJECTED = "rejected"  # field errors


@dataclass
class Result:
    outcome: Outcome
    row: object | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED)


def is_services(issuer: Issuer | None) -> bool:
    return issuer is not None and issuer.kind == SERVICES


@dataclass(frozen=True)
class CountryRules:
    """What a provider's data may say in the issuer's country (module docstring)."""

    country: str
    rates: frozenset[Decimal]
    default_rate: Decimal
    bad_rate: str
    formas_pago: tuple[str, ...]
    bad_forma_pago: str
    sat_codes: bool  # clave_prod_serv and clave_unidad are checked against SAT's catalogs


RULES = {
    "MX": CountryRules(
        "MX",
        frozenset(Decimal(r) for r in RATES),
        DEFAULT_RATE,
        BAD_SERVICE_RATE,
        tuple(FORMAS_PAGO),
        BAD_FORMA_PAGO,
        sat_codes=True,
    ),
    "EC": CountryRules(
        "EC",
        frozenset(Decimal(r) for r in EC_RATES),
        EC_DEFAULT_RATE,
        BAD_SERVICE_RATE_EC,
        EC_FORMAS_PAGO,
        BAD_FORMA_PAGO_EC,
        sat_codes=False,
    ),
}


def rules_for(issuer: Issuer) -> CountryRules:
    """The issuer's country's rules (Issuer.country is "MX" or "EC")."""
    return RULES[issuer.country if issuer.country in RULES else "MX"]


# --- Checking one payload ---------------------------------------------------------------------


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


_MISSING = object()


class _Check:
    """Field checks over one payload; every problem goes to `errors` with its path."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def error(self, name: str, message: str, **params: str) -> None:
        self.errors.append(FieldError(_path(self.prefix, name), message, params))

    def mapping(self, payload: object, known: Collection[str]) -> bool:
        if not isinstance(payload, Mapping):
            self.errors.append(FieldError(self.prefix or "body", NOT_OBJECT))
            return False
        for name in payload:
            if name not in known:
                shown = "".join("\ufffd" if not c.isprintable() else c for c in str(name)[:60])
                self.error(shown, UNKNOWN_FIELD)
        return True

    def raw(self, data: Mapping, name: str, *, required: bool) -> str | None:
        """The value as sent when it is a string (None when absent or null, or blank and
        required; _MISSING when not a string)."""
        value = data.get(name)
        if value is None:
            if required:
                self.error(name, REQUIRED)
            return None
        if not isinstance(value, str):
            self.error(name, NOT_TEXT)
            return _MISSING  # type: ignore[return-value]
        if required and not value.strip():
            self.error(name, REQUIRED)
            return None
        return value  # blank when optional: the caller's checks refuse or keep it

    def pattern(
        self, data: Mapping, name: str, pattern: re.Pattern, message: str, *, required=True
    ) -> str | None:
        value = self.raw(data, name, required=required)
        if value is None or value is _MISSING:
            return None
        if not pattern.fullmatch(value):
            self.error(name, message)
            return None
        return value

    def text(self, data: Mapping, name: str, limit: int, *, required=True, pipe=True) -> str | None:
        value = self.raw(data, name, required=required)
        if value is None or value is _MISSING:
            return None
        problem = check_text(value, limit, pipe=pipe)
        if problem is not None:
            self.error(name, _TEXT_MESSAGES[problem], **({"max": str(limit)} if limit else {}))
            return None
        return value.strip()

    def decimal(
        self, data: Mapping, name: str, pattern: re.Pattern, message: str, *, required=True
    ) -> Decimal | None:
        value = self.pattern(data, name, pattern, message, required=required)
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover (the pattern admits only decimals)
            self.error(name, message)
            return None

    def choice(
        self, data: Mapping, name: str, choices: Collection[str], message: str, default: str
    ) -> str | None:
        value = self.raw(data, name, required=False)
        if value is _MISSING:
            return None
        if value is None:
            return default
        if value not in choices:
            self.error(name, message)
            return None
        return value

    def rate(self, data: Mapping, name: str, rules: CountryRules) -> tuple[bool, Decimal | None]:
        """(valid, rate): absent is the country's general rate (16 %, 15 %); null is exento."""
        if name not in data:
            return True, rules.default_rate
        value = data[name]
        if value is None:
            return True, None
        if not isinstance(value, str):
            self.error(name, NOT_TEXT)
            return False, None
        if not _RATE.fullmatch(value) or Decimal(value) not in rules.rates:
            self.error(name, rules.bad_rate)
            return False, None
        return True, Decimal(value).quantize(Decimal("0.000001"))

    def clave_prod(
        self, data: Mapping, rules: CountryRules, name: str = "clave_prod_serv"
    ) -> str | None:
        pattern, message = (
            (_CLAVE_PROD, BAD_CLAVE_PROD)
            if rules.sat_codes
            else (_ANY_CLAVE_PROD, BAD_CLAVE_PROD_EC)
        )
        value = self.pattern(data, name, pattern, message, required=False)
        if value is None:
            return None if name in data and data[name] is not None else DEFAULT_CLAVE_PROD
        if rules.sat_codes and not clave_prod_serv_exists(value):
            self.error(name, UNKNOWN_CLAVE_PROD, code=value)
            return None
        return value

    def clave_unidad(
        self, data: Mapping, rules: CountryRules, name: str = "clave_unidad"
    ) -> str | None:
        pattern, message = (
            (_CLAVE_UNIDAD, BAD_CLAVE_UNIDAD)
            if rules.sat_codes
            else (_ANY_CLAVE_UNIDAD, BAD_CLAVE_UNIDAD_EC)
        )
        value = self.pattern(data, name, pattern, message, required=False)
        if value is None:
            return None if name in data and data[name] is not None else DEFAULT_CLAVE_UNIDAD
        if rules.sat_codes and not clave_unidad_exists(value):
            self.error(name, UNKNOWN_CLAVE_UNIDAD, code=value)
            return None
        return value


def _status(check: _Check, data: Mapping) -> AccountStatus | None:
    value = check.choice(data, "status", [s.value for s in AccountStatus], BAD_STATUS, "active")
    return None if value is None else AccountStatus(value)


def _apply(row, values: Mapping) -> bool:
    """Set `values` on `row`; whether anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _insert_or_update(
    session: Session, find: Callable[[], object | None], make: Callable[[], object], values: dict
) -> Result:
    """Update the row `find()` answers with `values`, or insert `make()` in a savepoint; a
    row inserted by someone else in between is updated instead."""
    row = find()
    if row is None:
        row = make()
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = find()
            if row is None:
                raise
        else:
            if _apply(row, values):  # a None the column's default replaced (tax_rate: exento)
                session.flush()
            return Result(Outcome.CREATED, row)
    if _apply(row, values):
        session.flush()
        return Result(Outcome.UPDATED, row)
    return Result(Outcome.UNCHANGED, row)


def _rejected(check: _Check) -> Result:
    return Result(Outcome.REJECTED, errors=check.errors)


# --- Service types ----------------------------------------------------------------------------


def find_service_type(session: Session, issuer_id: int, code: str) -> ServiceType | None:
    return session.scalar(
        select(ServiceType).where(ServiceType.issuer_id == issuer_id, ServiceType.code == code)
    )


def put_service_type(session: Session, issuer: Issuer, payload: object, prefix="") -> Result:
    check = _Check(prefix)
    if not check.mapping(payload, SERVICE_TYPE_FIELDS):
        return _rejected(check)
    code = check.pattern(payload, "code", _CODE, BAD_CODE)
    name = check.text(payload, "name", TYPE_NAME_MAX)
    kind = check.choice(
        payload, "line_kind", [k.value for k in LineKind], BAD_LINE_KIND, LineKind.PHONE.value
    )
    if check.errors:
        return _rejected(check)
    kind = LineKind(kind)
    existing = find_service_type(session, issuer.id, code)
    if existing is not None and existing.line_kind != kind and _has_lines(session, existing):
        check.error("line_kind", TYPE_HAS_LINES)
        return _rejected(check)
    values = {"name": name, "line_kind": kind}
    return _insert_or_update(
        session,
        lambda: find_service_type(session, issuer.id, code),
        lambda: ServiceType(issuer_id=issuer.id, code=code, **values),
        values,
    )


def _has_lines(session: Session, service_type: ServiceType) -> bool:
    return (
        session.scalar(
            select(ServiceLine.id).where(ServiceLine.service_type_id == service_type.id).limit(1)
        )
        is not None
    )


def service_type_json(row: ServiceType) -> dict:
    return {"code": row.code, "name": row.name, "line_kind": row.line_kind.value}


# --- Plans ------------------------------------------------------------------------------------


def find_plan(session: Session, issuer_id: int, code: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.issuer_id == issuer_id, Plan.code == code))


def put_plan(session: Session, issuer: Issuer, payload: object, prefix="") -> Result:
    check = _Check(prefix)
    if not check.mapping(payload, PLAN_FIELDS):
        return _rejected(check)
    code = check.pattern(payload, "code", _CODE, BAD_CODE)
    type_code = check.pattern(payload, "service_type", _CODE, BAD_CODE)
    service_type = None
    if type_code is not None:
        service_type = find_service_type(session, issuer.id, type_code)
        if service_type is None:
            check.error("service_type", UNKNOWN_TYPE, code=type_code)
    name = check.text(payload, "name", PLAN_NAME_MAX)
    fee = check.decimal(payload, "monthly_fee", _DECIMAL6, BAD_FEE)
    rules = rules_for(issuer)
    rate_ok, rate = check.rate(payload, "tax_rate", rules)
    clave = check.clave_prod(payload, rules)
    unidad = check.clave_unidad(payload, rules)
    active = payload.get("active", True)
    if active is None:
        active = True
    if not isinstance(active, bool):
        check.error("active", BAD_BOOL)
    if check.errors or not rate_ok:
        return _rejected(check)
    existing = find_plan(session, issuer.id, code)
    if (
        existing is not None
        and existing.service_type_id != service_type.id
        and session.scalar(select(ServiceLine.id).where(ServiceLine.plan_id == existing.id))
    ):
        check.error("service_type", PLAN_TYPE_FIXED)
        return _rejected(check)
    values = {
        "service_type_id": service_type.id,
        "name": name,
        "monthly_fee": fee,
        "tax_rate": rate,
        "clave_prod_serv": clave,
        "clave_unidad": unidad,
        "active": active,
    }
    return _insert_or_update(
        session,
        lambda: find_plan(session, issuer.id, code),
        lambda: Plan(issuer_id=issuer.id, code=code, **values),
        values,
    )


def _decimal_text(value: Decimal | None, places: int | None = None) -> str | None:
    if value is None:
        return None
    if places is not None:
        return f"{value:.{places}f}"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def plan_json(row: Plan) -> dict:
    return {
        "code": row.code,
        "service_type": row.service_type.code,
        "name": row.name,
        "monthly_fee": _decimal_text(row.monthly_fee),
        "tax_rate": _decimal_text(row.tax_rate, 6),
        "clave_prod_serv": row.clave_prod_serv,
        "clave_unidad": row.clave_unidad,
        "active": row.active,
    }


# --- Service accounts and their lines ---------------------------------------------------------


def find_account(session: Session, issuer_id: int, number: str) -> ServiceAccount | None:
    return session.scalar(
        select(ServiceAccount).where(
            ServiceAccount.issuer_id == issuer_id, ServiceAccount.number == number
        )
    )


def _holder_id(check: _Check, data: Mapping, issuer: Issuer) -> str | None:
    value = check.raw(data, "holder_id", required=True)
    if value is None or value is _MISSING:
        return None
    if issuer.country == "MX":
        # Who the holder is: their RFC, or the generic XAXX010101000 of one who gave none.
        rfc, problem = check_rfc(value)
        if rfc != value or (problem is not None and problem is not Problem.GENERIC):
            check.error("holder_id", FISCAL_MESSAGES[("rfc", problem or Problem.FORMAT)])
            return None
        return rfc
    # Ecuador: ten digits are a cédula (its check digit valid); anything else a passport.
    if _CEDULA.fullmatch(value):
        if not ec_ci.is_valid(value):
            check.error("holder_id", BAD_CEDULA)
            return None
        return value
    if not _PASSPORT.fullmatch(value):
        check.error("holder_id", BAD_HOLDER_ID_EC)
        return None
    return value


_NO_FISCAL = ("fiscal_rfc", "fiscal_name", "fiscal_cp", "fiscal_regimen", "fiscal_uso")


def _fiscal(check: _Check, data: Mapping, issuer: Issuer) -> tuple[bool, dict]:
    """(valid, the account's fiscal_* values): all of the country's, or none (null or
    absent)."""
    empty = dict.fromkeys(_NO_FISCAL)
    value = data.get("fiscal")
    if value is None:
        return True, empty
    if issuer.country == "EC":
        return _fiscal_ec(check, value)
    sub = _Check(_path(check.prefix, "fiscal"))
    try:
        if not sub.mapping(value, FISCAL_FIELDS):
            return False, empty
        texts = {}
        for name in FISCAL_FIELDS:
            text = sub.raw(value, name, required=False)
            if text is _MISSING:
                return False, empty
            texts[name] = text
        missing = [name for name, text in texts.items() if text is None or not text.strip()]
        if missing:
            for name in missing:
                sub.error(name, FISCAL_INCOMPLETE)
            return False, empty
        if len(texts["name"]) > NOMBRE_MAX:
            sub.error("name", TEXT_TOO_LONG, max=str(NOMBRE_MAX))
        elif (problem := check_text(texts["name"], NOMBRE_MAX, pipe=True)) is not None:
            sub.error("name", _TEXT_MESSAGES[problem], max=str(NOMBRE_MAX))
        nombre = normalize_nombre(texts["name"])
        receptor = Receptor(
            rfc=texts["rfc"],
            nombre=nombre,
            cp=texts["cp"],
            regimen=texts["regimen"],
            uso_cfdi=texts["uso"],
        )
        problems = check_receptor(receptor)
        rfc, _ = check_rfc(texts["rfc"])
        if "rfc" not in problems and rfc != texts["rfc"]:
            problems["rfc"] = Problem.FORMAT  # as SAT writes it: capitals, nothing else
        for key in ("cp", "regimen", "uso_cfdi"):  # exactly the code, no blanks around it
            text = texts[_RECEPTOR_FIELDS[key]]
            if key not in problems and text != text.strip():
                problems[key] = Problem.FORMAT if key == "cp" else Problem.UNKNOWN
        for key, problem in problems.items():
            name = _RECEPTOR_FIELDS[key]
            if name == "name" and any(e.field.endswith(".name") for e in sub.errors):
                continue
            message = FISCAL_MESSAGES.get((name, problem), TEXT_PIPE)
            params = {"max": str(NOMBRE_MAX)} if problem is Problem.TOO_LONG else {}
            sub.error(name, message, **params)
        if sub.errors:
            return False, empty
        return True, {
            "fiscal_rfc": rfc,
            "fiscal_name": nombre,
            "fiscal_cp": texts["cp"],
            "fiscal_regimen": texts["regimen"],
            "fiscal_uso": texts["uso"],
        }
    finally:
        check.errors.extend(sub.errors)


def _fiscal_ec(check: _Check, value: object) -> tuple[bool, dict]:
    """Ecuador: the RUC (`rfc`) and the razón social (`name`); SAT's cp, regimen and uso
    absent, null or empty (a value is refused: it means the provider mapped Mexican data)."""
    empty = dict.fromkeys(_NO_FISCAL)
    sub = _Check(_path(check.prefix, "fiscal"))
    try:
        if not sub.mapping(value, FISCAL_FIELDS):
            return False, empty
        texts = {}
        for name in FISCAL_FIELDS:
            text = sub.raw(value, name, required=False)
            if text is _MISSING:
                return False, empty
            texts[name] = text
        for name in FISCAL_FIELDS:
            if name not in EC_FISCAL_FIELDS and texts[name] is not None and texts[name].strip():
                sub.error(name, FISCAL_NOT_EC)
        missing = [n for n in EC_FISCAL_FIELDS if texts[n] is None or not texts[n].strip()]
        for name in missing:
            sub.error(name, FISCAL_INCOMPLETE_EC)
        if missing:
            return False, empty
        ruc = None
        try:
            ruc = sri_catalogs.validate_identification(sri_catalogs.RUC, texts["rfc"])
        except sri_catalogs.InvalidIdentification:
            sub.error("rfc", BAD_RUC)
        if (problem := check_text(texts["name"], NOMBRE_MAX, pipe=True)) is not None:
            sub.error("name", _TEXT_MESSAGES[problem], max=str(NOMBRE_MAX))
        if sub.errors:
            return False, empty
        return True, empty | {"fiscal_rfc": ruc, "fiscal_name": normalize_nombre(texts["name"])}
    finally:
        check.errors.extend(sub.errors)


def _billing_day(check: _Check, data: Mapping) -> int | None:
    value = data.get("billing_day", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 28:
        check.error("billing_day", BAD_BILLING_DAY)
        return None
    return value


@dataclass
class _LineData:
    number: str
    service_type: ServiceType
    plan: Plan | None
    status: AccountStatus


def _line_number(check: _Check, data: Mapping, service_type: ServiceType | None) -> str | None:
    """The line's number as stored: E.164 for a phone line, the contract number otherwise."""
    value = check.raw(data, "number", required=True)
    if value is None or value is _MISSING:
        return None
    if service_type is None:  # the type's error is reported; the number cannot be judged
        return None
    if service_type.line_kind is LineKind.PHONE:
        if len(value) > PHONE_INPUT_MAX:
            check.error("number", BAD_PHONE_LINE)
            return None
        try:
            return normalise_number(value)
        except ValueError:
            check.error("number", BAD_PHONE_LINE)
            return None
    if not _NUMBER.fullmatch(value):
        check.error("number", BAD_NUMBER)
        return None
    return value


def _line_data(session: Session, issuer: Issuer, check: _Check, data: Mapping) -> _LineData | None:
    type_code = check.pattern(data, "service_type", _CODE, BAD_CODE)
    service_type = None
    if type_code is not None:
        service_type = find_service_type(session, issuer.id, type_code)
        if service_type is None:
            check.error("service_type", UNKNOWN_TYPE, code=type_code)
    number = _line_number(check, data, service_type)
    plan_code = check.pattern(data, "plan", _CODE, BAD_CODE, required=False)
    plan = None
    if plan_code is not None:
        plan = find_plan(session, issuer.id, plan_code)
        if plan is None:
            check.error("plan", UNKNOWN_PLAN, code=plan_code)
        elif service_type is not None and plan.service_type_id != service_type.id:
            check.error("plan", PLAN_OTHER_TYPE, code=plan_code)
            plan = None
        elif not plan.active and number is not None:
            current = _find_line(session, issuer.id, number)
            if current is None or current.plan_id != plan.id:
                check.error("plan", PLAN_INACTIVE, code=plan_code)
                plan = None
    status = _status(check, data)
    if number is None or service_type is None or status is None:
        return None
    if plan_code is not None and plan is None:
        return None
    return _LineData(number, service_type, plan, status)


def _find_line(session: Session, issuer_id: int, number: str) -> ServiceLine | None:
    return session.scalar(
        select(ServiceLine).where(ServiceLine.issuer_id == issuer_id, ServiceLine.number == number)
    )


def _store_line(session: Session, issuer: Issuer, account: ServiceAccount, data: _LineData):
    """Insert or update one line (inside the caller's savepoint); a line that moves to another
    account forgets who proved it: its next holder proves it again."""
    values = {
        "service_account_id": account.id,
        "service_type_id": data.service_type.id,
        "plan_id": data.plan.id if data.plan else None,
        "status": data.status,
    }
    line = _find_line(session, issuer.id, data.number)
    if line is None:
        line = ServiceLine(issuer_id=issuer.id, number=data.number, **values)
        session.add(line)
        session.flush()
        return Outcome.CREATED, line
    moved = line.service_account_id != account.id
    if _apply(line, values):
        if moved:
            session.execute(delete(LineHolder).where(LineHolder.line_id == line.id))
        session.flush()
        return Outcome.UPDATED, line
    return Outcome.UNCHANGED, line


def put_account(session: Session, issuer: Issuer, payload: object, prefix="") -> Result:
    """A service account and, when `lines` is given, those of its lines (lines not listed
    stay as they are): all of it stored, or none."""
    check = _Check(prefix)
    if not check.mapping(payload, ACCOUNT_FIELDS):
        return _rejected(check)
    number = check.pattern(payload, "number", _NUMBER, BAD_NUMBER)
    holder_name = check.text(payload, "holder_name", NOMBRE_MAX)
    holder_id = _holder_id(check, payload, issuer)
    fiscal_ok, fiscal = _fiscal(check, payload, issuer)
    email = check.raw(payload, "email", required=False)
    if email is not None and email is not _MISSING:
        try:
            email = validate_address(email) if len(email) <= EMAIL_MAX else None
        except ValueError:
            email = None
        if email is None:
            check.error("email", BAD_EMAIL)
    elif email is _MISSING:
        email = None
    mobile = check.raw(payload, "contact_mobile", required=False)
    if mobile is not None and mobile is not _MISSING:
        try:
            mobile = normalise_number(mobile)
        except ValueError:
            check.error("contact_mobile", BAD_MOBILE)
            mobile = None
    elif mobile is _MISSING:
        mobile = None
    billing_day = _billing_day(check, payload)
    status = _status(check, payload)
    lines: list[_LineData] = []
    raw_lines = payload.get("lines")
    if raw_lines is not None:
        if not isinstance(raw_lines, list):
            check.error("lines", NOT_LIST)
        elif len(raw_lines) > MAX_NESTED_LINES:
            check.error("lines", TOO_MANY_LINES, n=str(MAX_NESTED_LINES))
        else:
            seen: set[str] = set()
            for index, item in enumerate(raw_lines):
                sub = _Check(_path(prefix, f"lines[{index}]"))
                if sub.mapping(item, NESTED_LINE_FIELDS):
                    data = _line_data(session, issuer, sub, item)
                    if data is not None and data.number in seen:
                        sub.error("number", LINE_REPEATED, number=data.number)
                    elif data is not None:
                        seen.add(data.number)
                        lines.append(data)
                check.errors.extend(sub.errors)
    if check.errors or not fiscal_ok:
        return _rejected(check)
    values = {
        "holder_name": normalize_nombre(holder_name),
        "holder_id": holder_id,
        **fiscal,
        "email": email,
        "contact_mobile": mobile,
        "billing_day": billing_day,
        "status": status,
    }
    try:
        with session.begin_nested():
            result = _insert_or_update(
                session,
                lambda: find_account(session, issuer.id, number),
                lambda: ServiceAccount(issuer_id=issuer.id, number=number, **values),
                values,
            )
            session.flush()
            line_changed = False
            for data in lines:
                outcome, _line = _store_line(session, issuer, result.row, data)
                line_changed |= outcome is not Outcome.UNCHANGED
    except IntegrityError:  # a line pushed by someone else in between: send it again
        check.error("lines", LINES_RACED)
        return _rejected(check)
    if line_changed and result.outcome is Outcome.UNCHANGED:
        result.outcome = Outcome.UPDATED
    session.refresh(result.row, ["lines"])
    return result


def put_line(session: Session, issuer: Issuer, payload: object, prefix="") -> Result:
    check = _Check(prefix)
    if not check.mapping(payload, LINE_FIELDS):
        return _rejected(check)
    account_number = check.pattern(payload, "account", _NUMBER, BAD_NUMBER)
    account = None
    if account_number is not None:
        account = find_account(session, issuer.id, account_number)
        if account is None:
            check.error("account", UNKNOWN_ACCOUNT, number=account_number)
    data = _line_data(session, issuer, check, payload)
    if check.errors or data is None or account is None:
        return _rejected(check)
    try:
        with session.begin_nested():
            outcome, line = _store_line(session, issuer, account, data)
    except IntegrityError:  # the same line pushed at the same moment: it is there now
        line = _find_line(session, issuer.id, data.number)
        if line is None:
            raise
        with session.begin_nested():
            outcome, line = _store_line(session, issuer, account, data)
    return Result(outcome, line)


def line_json(line: ServiceLine, *, account: bool = True) -> dict:
    body = {"number": line.number}
    if account:
        body["account"] = line.account.number
    body |= {
        "service_type": line.service_type.code,
        "plan": line.plan.code if line.plan else None,
        "status": line.status.value,
    }
    return body


def account_json(row: ServiceAccount) -> dict:
    fiscal = None  # Ecuador: cp, regimen and uso are null
    if row.has_fiscal_data:
        fiscal = {
            "rfc": row.fiscal_rfc,
            "name": row.fiscal_name,
            "cp": row.fiscal_cp,
            "regimen": row.fiscal_regimen,
            "uso": row.fiscal_uso,
        }
    return {
        "number": row.number,
        "holder_name": row.holder_name,
        "holder_id": row.holder_id,
        "fiscal": fiscal,
        "email": row.email,
        "contact_mobile": row.contact_mobile,
        "billing_day": row.billing_day,
        "status": row.status.value,
        "lines": [line_json(line, account=False) for line in row.lines],
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


# --- Charges and payments ---------------------------------------------------------------------


def _account_ref(session: Session, issuer: Issuer, check: _Check, data: Mapping):
    number = check.pattern(data, "account", _NUMBER, BAD_NUMBER)
    if number is None:
        return None
    account = find_account(session, issuer.id, number)
    if account is None:
        check.error("account", UNKNOWN_ACCOUNT, number=number)
    return account


def _find_charge(session: Session, issuer_id: int, external_id: str) -> Charge | None:
    return session.scalar(
        select(Charge).where(Charge.issuer_id == issuer_id, Charge.external_id == external_id)
    )


def put_charge(session: Session, issuer: Issuer, payload: object, prefix="") -> Result:
    check = _Check(prefix)
    if not check.mapping(payload, CHARGE_FIELDS):
        return _rejected(check)
    external_id = check.pattern(payload, "external_id", _EXTERNAL_ID, BAD_EXTERNAL_ID)
    account = _account_ref(session, issuer, check, payload)
    line_id = None
    line_number = check.raw(payload, "line", required=False)
    if line_number is not None and line_number is not _MISSING and account is not None:
        line = _account_line(session, account, line_number)
        if line is None:
            check.error("line", UNKNOWN_LINE, number=line_number[:40])
        else:
            line_id = line.id
    period = check.pattern(payload, "period", _PERIOD, BAD_PERIOD)
    description = check.text(payload, "description", DESCRIPCION_MAX, pipe=False)
    quantity = check.decimal(payload, "quantity", _DECIMAL6, BAD_QUANTITY, required=False)
    if "quantity" not in payload or payload["quantity"] is None:
        quantity = Decimal("1")
    elif quantity is not None and quantity <= 0:
        check.error("quantity", BAD_QUANTITY)
    unit_price = check.decimal(payload, "unit_price", _DECIMAL6, BAD_UNIT_PRICE)
    rules = rules_for(issuer)
    rate_ok, rate = check.rate(payload, "tax_rate", rules)
    clave = check.clave_prod(payload, rules)
    unidad = check.clave_unidad(payload, rules)
    if check.errors or not rate_ok:
        return _rejected(check)
    values = {
        "service_account_id": account.id,
        "line_id": line_id,
        "period": period,
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "tax_rate": rate,
        "clave_prod_serv": clave,
        "clave_unidad": unidad,
    }
    existing = _find_charge(session, issuer.id, external_id)
    if existing is not None and existing.bill_id is not None:
        if _same(existing, values):
            return Result(Outcome.UNCHANGED, existing)
        check.error("external_id", CHARGE_BILLED, external_id=external_id, period=existing.period)
        return Result(Outcome.CONFLICT, existing, check.errors)
    return _insert_or_update(
        session,
        lambda: _find_charge(session, issuer.id, external_id),
        lambda: Charge(issuer_id=issuer.id, external_id=external_id, **values),
        values,
    )


def _same(row, values: Mapping) -> bool:
    return all(getattr(row, name) == value for name, value in values.items())


def _account_line(session: Session, account: ServiceAccount, number: str) -> ServiceLine | None:
    candidates = [number]
    with contextlib.suppress(ValueError):
        candidates.append(normalise_number(number))
    return session.scalar(
        select(ServiceLine).where(
            ServiceLine.service_account_id == account.id, ServiceLine.number.in_(candidates)
        )
    )


def charge_json(session: Session, row: Charge) -> dict:
    line = session.get(ServiceLine, row.line_id) if row.line_id is not None else None
    return {
        "external_id": row.external_id,
        "account": session.get(ServiceAccount, row.service_account_id).number,
        "line": line.number if line is not None else None,
        "period": row.period,
        "description": row.description,
        "quantity": _decimal_text(row.quantity),
        "unit_price": _decimal_text(row.unit_price),
        "tax_rate": _decimal_text(row.tax_rate, 6),
        "clave_prod_serv": row.clave_prod_serv,
        "clave_unidad": row.clave_unidad,
        "billed": row.bill_id is not None,
    }


def _find_payment(session: Session, issuer_id: int, external_id: str) -> Payment | None:
    return session.scalar(
        select(Payment).where(Payment.issuer_id == issuer_id, Payment.external_id == external_id)
    )


def put_payment(
    session: Session, issuer: Issuer, payload: object, prefix="", *, now: datetime | None = None
) -> Result:
    check = _Check(prefix)
    if not check.mapping(payload, PAYMENT_FIELDS):
        return _rejected(check)
    now = now or datetime.now(UTC)
    external_id = check.pattern(payload, "external_id", _EXTERNAL_ID, BAD_EXTERNAL_ID)
    account = _account_ref(session, issuer, check, payload)
    amount = check.decimal(payload, "amount", _AMOUNT, BAD_AMOUNT)
    if amount is not None and amount <= 0:
        check.error("amount", BAD_AMOUNT)
    received_at = None
    raw = check.raw(payload, "received_at", required=True)
    if raw is not None and raw is not _MISSING:
        parsed = parse_sold_at(raw)
        if isinstance(parsed, str):
            check.error("received_at", parsed)
        elif parsed > now + FUTURE_SKEW:
            check.error("received_at", FUTURE_PAYMENT)
        else:
            received_at = parsed.replace(microsecond=0)
    rules = rules_for(issuer)
    forma_pago = check.choice(payload, "forma_pago", rules.formas_pago, rules.bad_forma_pago, "")
    reference = check.text(payload, "reference", REFERENCE_MAX, required=False)
    if check.errors:
        return _rejected(check)
    values = {
        "service_account_id": account.id,
        "amount": amount.quantize(Decimal("0.01")),
        "received_at": received_at,
        "forma_pago": forma_pago or None,
        "reference": reference or "",
    }
    existing = _find_payment(session, issuer.id, external_id)
    if existing is None:
        row = Payment(issuer_id=issuer.id, external_id=external_id, **values)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = _find_payment(session, issuer.id, external_id)
            if existing is None:
                raise
        else:
            return Result(Outcome.CREATED, row)
    if _same(existing, values):
        return Result(Outcome.UNCHANGED, existing)
    check.error("external_id", PAYMENT_EXISTS, external_id=external_id)
    return Result(Outcome.CONFLICT, existing, check.errors)


def payment_json(session: Session, row: Payment) -> dict:
    return {
        "external_id": row.external_id,
        "account": session.get(ServiceAccount, row.service_account_id).number,
        "amount": f"{row.amount:.2f}",
        "received_at": row.received_at.isoformat(),
        "forma_pago": row.forma_pago,
        "reference": row.reference,
    }
