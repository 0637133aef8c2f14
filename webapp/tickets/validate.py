"""One ticket payload (a dict, as the JSON API receives it and the CSV reader builds it) →
a `TicketData` ready to store, or per-field errors with machine-readable paths
("lines[0].clave_prod_serv").

The rules are those of the invoice the ticket will become: numbers the customer can type
(digits only, like the invoicing form), SAT catalog claves, IVA at 16 %, 8 % or 0 % or exempt,
an optional forma de pago of c_FormaPago (not 99, por definir: the ticket is paid), and a
total equal to what the lines compute with the CFDI builder's rounding
(`webapp.cfdi.amounts.ticket_total`): a ticket whose total cannot be invoiced is refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from satcfdi import catalogs

from webapp.cfdi.amounts import ticket_total
from webapp.cfdi.draft import EXENTO, OBJETO_NO_OBJETO, OBJETO_SI_OBJETO, TASA, Line
from webapp.fiscal.limits import (
    DESCRIPCION_MAX,
    TEXT_MESSAGES,
    TextProblem,
    check_text,
    is_invisible_control,
)
from webapp.i18n_marker import N_, spanish
from webapp.models import Branch
from webapp.tickets.payment import TICKET_FORMAS_PAGO

MAX_LINES = 200
MAX_NUMBER = 40  # Ticket.ticket_number, Ticket.order_number
MAX_BRANCH = 20  # Branch.code
MAX_DESCRIPTION = DESCRIPCION_MAX  # Concepto/@Descripcion, TicketLine.description
MAX_AMOUNT = Decimal("999999999999.99")  # Money: Numeric(14, 2)
FUTURE_SKEW = timedelta(minutes=15)  # a point of sale's clock may run a little fast
RATES = (Decimal("0.160000"), Decimal("0.080000"), Decimal("0.000000"))
CURRENCIES = ("MXN",)

# A ticket's fields and a line's, in the order of the CSV layout (webapp.tickets.csvfile).
TICKET_KEYS = (
    "branch",
    "ticket_number",
    "order_number",
    "sold_at",
    "total",
    "currency",
    "forma_pago",
)
LINE_KEYS = (
    "description",
    "clave_prod_serv",
    "clave_unidad",
    "quantity",
    "unit_price",
    "objeto_imp",
    "tax_factor",
    "tax_rate",
)
TICKET_FIELDS = frozenset((*TICKET_KEYS, "lines"))
LINE_FIELDS = frozenset(LINE_KEYS)

_DIGITS = re.compile(r"[0-9]{1,40}")
_TOTAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
_DECIMAL6 = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_CLAVE_PROD = re.compile(r"[0-9]{8}")
_CLAVE_UNIDAD = re.compile(r"[A-Z0-9]{1,3}")
_RATE = re.compile(r"0\.[0-9]{1,6}")

# Messages (es-MX): msgids marked for extraction, translated where they are shown;
# parameters go apart (FieldError.params).
REQUIRED = N_("Falta este dato.")
NOT_TEXT = N_("Debe ser texto (entre comillas).")
NOT_OBJECT = N_("Debe ser un objeto JSON.")
UNKNOWN_FIELD = N_("Campo desconocido.")
DIGITS_ONLY = N_("Sólo dígitos, hasta 40, como lo teclea el cliente al facturar.")
BRANCH_UNKNOWN = N_("No hay una sucursal con la clave «%(code)s».")
BRANCH_INACTIVE = N_("La sucursal «%(code)s» está desactivada.")
BRANCH_NOT_YOURS = N_("Sólo puede cargar tickets de su sucursal.")
BAD_DATE = N_("Fecha y hora ISO 8601 con zona horaria, p. ej. 2026-05-01T13:45:00-06:00.")
NO_OFFSET = N_("Indique la zona horaria, p. ej. 2026-05-01T13:45:00-06:00.")
FUTURE = N_("La fecha de venta está en el futuro.")
BAD_TOTAL = N_('Importe en pesos con hasta dos decimales, como texto: "123.45".')
TOTAL_MISMATCH = N_("El total no coincide con el de las partidas: %(expected)s.")
TOTAL_ZERO = N_("El total debe ser mayor que cero.")
TOTAL_TOO_BIG = N_("El total excede el máximo permitido.")
BAD_CURRENCY = N_("Sólo se aceptan tickets en pesos mexicanos (MXN).")
BAD_FORMA_PAGO = N_(
    "Clave de forma de pago del SAT (c_FormaPago), p. ej. 01 (efectivo), 04 (tarjeta de "
    "crédito) o 28 (tarjeta de débito); 99 (por definir) no se acepta en un ticket pagado."
)
NO_LINES = N_("El ticket necesita al menos una partida.")
TOO_MANY_LINES = N_("Un ticket admite hasta %(n)s partidas.")
NOT_LIST = N_("Debe ser una lista de partidas.")
BAD_CLAVE_PROD = N_("Clave de producto o servicio del SAT de 8 dígitos (c_ClaveProdServ).")
UNKNOWN_CLAVE_PROD = N_("La clave «%(code)s» no está en el catálogo c_ClaveProdServ del SAT.")
BAD_CLAVE_UNIDAD = N_("Clave de unidad del SAT, p. ej. H87 o KGM (c_ClaveUnidad).")
UNKNOWN_CLAVE_UNIDAD = N_("La clave «%(code)s» no está en el catálogo c_ClaveUnidad del SAT.")
BAD_QUANTITY = N_('Cantidad mayor que cero, con hasta seis decimales, como texto: "1.5".')
BAD_PRICE = N_('Precio unitario antes de impuestos, con hasta seis decimales, como texto: "10.50".')
BAD_OBJETO = N_("Objeto de impuesto «01» (no objeto) o «02» (sí objeto).")
BAD_FACTOR = N_("Con objeto de impuesto 02, el factor es «Tasa» o «Exento».")
NO_TAX_EXPECTED = N_("Debe omitirse (o ser null) con objeto de impuesto 01 o factor Exento.")
BAD_RATE = N_("Tasa de IVA «0.160000», «0.080000» o «0.000000».")


@dataclass(frozen=True)
class FieldError:
    """A problem with one field: `message` is a msgid (es-MX) and `params` fill its
    placeholders; `text` reads it in Spanish, a view translates it with gettext."""

    field: str
    message: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def text(self) -> str:
        return spanish(self.message, self.params)

    def as_dict(self, translate: Callable[..., str] | None = None) -> dict[str, str]:
        """{"field", "message"}: the message through `translate(msgid, **params)`, or Spanish."""
        message = translate(self.message, **self.params) if translate else self.text
        return {"field": self.field, "message": message}


@dataclass(frozen=True)
class TicketData:
    """A valid ticket: what `ingest` stores."""

    branch: Branch
    ticket_number: str
    order_number: str
    sold_at: datetime  # aware, UTC
    total: Decimal
    currency: str
    lines: tuple[Line, ...]
    forma_pago: str | None = None  # SAT c_FormaPago, when the point of sale says

    def fingerprint(self) -> tuple:
        """What makes two pushes of one ticket "the same content"."""
        return (
            self.order_number,
            self.sold_at.astimezone(UTC).replace(microsecond=0),
            self.total,
            self.currency,
            self.forma_pago,
            tuple(line_fingerprint(line) for line in self.lines),
        )


def line_fingerprint(line) -> tuple:
    rate = None if line.tax_rate is None else Decimal(line.tax_rate)
    return (
        line.description,
        line.clave_prod_serv,
        line.clave_unidad,
        Decimal(line.quantity),
        Decimal(line.unit_price),
        line.objeto_imp,
        line.tax_factor,
        rate,
    )


@dataclass
class Parsed:
    ticket: TicketData | None = None
    errors: list[FieldError] = field(default_factory=list)


@functools.lru_cache(maxsize=8192)
def clave_prod_serv_exists(code: str) -> bool:
    return catalogs.select("C756_c_ClaveProdServ", code) is not None


@functools.lru_cache(maxsize=4096)
def clave_unidad_exists(code: str) -> bool:
    return catalogs.select("C756_c_ClaveUnidad", code) is not None


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Checker:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def error(self, name: str, message: str, **params: str) -> None:
        self.errors.append(FieldError(_path(self.prefix, name), message, params))

    def text(self, data: Mapping, name: str, *, required: bool = True) -> str | None:
        value = data.get(name)
        if value is None:
            if required:
                self.error(name, REQUIRED)
            return None
        if not isinstance(value, str):
            self.error(name, NOT_TEXT)
            return None
        value = value.strip()
        if not value and required:
            self.error(name, REQUIRED)
            return None
        return value

    def unknown(self, data: Mapping, known: Collection[str]) -> None:
        for name in data:
            if name not in known:
                self.error(_shown(str(name)), UNKNOWN_FIELD)


def _shown(text: str) -> str:
    """`text` to echo in an answer: its invisible control characters as U+FFFD (a lone
    surrogate cannot even be encoded in the UTF-8 of the answer)."""
    return "".join("\ufffd" if is_invisible_control(c) else c for c in text)


def _decimal(value: str, pattern: re.Pattern) -> Decimal | None:
    if not pattern.fullmatch(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover (the pattern admits only decimals)
        return None


def parse_sold_at(value: str) -> datetime | str:
    """An aware UTC datetime, or the error message."""
    if len(value) > 40 or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.,+\-Zz]+", value):
        return BAD_DATE
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return BAD_DATE
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return NO_OFFSET
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return BAD_DATE


def parse_ticket(
    payload: object,
    find_branch: Callable[[str], Branch | None],
    *,
    now: datetime,
    prefix: str = "",
    allowed_branch_ids: Collection[int] | None = None,
) -> Parsed:
    """Validate one ticket payload; `find_branch(code)` gives the issuer's branch or None
    (another issuer's branch is just unknown); `allowed_branch_ids` limits branch staff."""
    check = _Checker(prefix)
    if not isinstance(payload, Mapping):
        return Parsed(errors=[FieldError(prefix or "body", NOT_OBJECT)])
    check.unknown(payload, TICKET_FIELDS)

    branch = None
    code = check.text(payload, "branch")
    if code is not None:
        if len(code) > MAX_BRANCH or any(map(is_invisible_control, code)):
            check.error("branch", BRANCH_UNKNOWN, code=_shown(code[:MAX_BRANCH]))
        elif (branch := find_branch(code)) is None:
            check.error("branch", BRANCH_UNKNOWN, code=code)
        elif allowed_branch_ids is not None and branch.id not in allowed_branch_ids:
            check.error("branch", BRANCH_NOT_YOURS)
            branch = None
        elif not branch.active:
            check.error("branch", BRANCH_INACTIVE, code=branch.code)
            branch = None

    numbers = {}
    for name in ("ticket_number", "order_number"):
        value = check.text(payload, name)
        if value is not None:
            if _DIGITS.fullmatch(value):
                numbers[name] = value
            else:
                check.error(name, DIGITS_ONLY)

    sold_at = None
    raw = check.text(payload, "sold_at")
    if raw is not None:
        parsed = parse_sold_at(raw)
        if isinstance(parsed, str):
            check.error("sold_at", parsed)
        elif parsed > now + FUTURE_SKEW:
            check.error("sold_at", FUTURE)
        else:
            sold_at = parsed

    currency = check.text(payload, "currency", required=False) or "MXN"
    if currency not in CURRENCIES:
        check.error("currency", BAD_CURRENCY)

    forma_pago = check.text(payload, "forma_pago", required=False)
    if forma_pago is not None and forma_pago not in TICKET_FORMAS_PAGO:
        check.error("forma_pago", BAD_FORMA_PAGO)

    total = None
    raw = check.text(payload, "total")
    if raw is not None:
        total = _decimal(raw, _TOTAL)
        if total is None:
            check.error("total", BAD_TOTAL)

    lines = _parse_lines(payload.get("lines"), check)
    if lines is not None and total is not None:
        expected = ticket_total(lines)
        if expected > MAX_AMOUNT:
            check.error("total", TOTAL_TOO_BIG)
        elif total != expected:
            check.error("total", TOTAL_MISMATCH, expected=f"{expected:.2f}")
        elif total <= 0:
            check.error("total", TOTAL_ZERO)

    if check.errors or branch is None or sold_at is None or lines is None or total is None:
        return Parsed(errors=check.errors)
    return Parsed(
        ticket=TicketData(
            branch=branch,
            ticket_number=numbers["ticket_number"],
            order_number=numbers["order_number"],
            sold_at=sold_at,
            total=total.quantize(Decimal("0.01")),
            currency=currency,
            lines=tuple(lines),
            forma_pago=forma_pago,
        )
    )


def _parse_lines(value: object, check: _Checker) -> list[Line] | None:
    if value is None:
        check.error("lines", NO_LINES)
        return None
    if not isinstance(value, list):
        check.error("lines", NOT_LIST)
        return None
    if not value:
        check.error("lines", NO_LINES)
        return None
    if len(value) > MAX_LINES:
        check.error("lines", TOO_MANY_LINES, n=str(MAX_LINES))
        return None
    lines = []
    for index, item in enumerate(value):
        line = _parse_line(item, _Checker(_path(check.prefix, f"lines[{index}]")), check)
        if line is not None:
            lines.append(line)
    return lines if len(lines) == len(value) else None


def _parse_line(item: object, check: _Checker, parent: _Checker) -> Line | None:
    try:
        return _line(item, check)
    finally:
        parent.errors.extend(check.errors)


def _line(item: object, check: _Checker) -> Line | None:
    if not isinstance(item, Mapping):
        check.errors.append(FieldError(check.prefix, NOT_OBJECT))
        return None
    check.unknown(item, LINE_FIELDS)
    description = check.text(item, "description")
    if description is not None:
        # The Concepto's Descripcion: [^|]{1,1000}, nothing XML or PostgreSQL refuses.
        problem = check_text(description, MAX_DESCRIPTION)
        if problem is TextProblem.TOO_LONG:
            check.error("description", TEXT_MESSAGES[problem], max=str(MAX_DESCRIPTION))
        elif problem is not None:
            check.error("description", TEXT_MESSAGES[problem])

    clave = check.text(item, "clave_prod_serv")
    if clave is not None:
        if not _CLAVE_PROD.fullmatch(clave):
            check.error("clave_prod_serv", BAD_CLAVE_PROD)
        elif not clave_prod_serv_exists(clave):
            check.error("clave_prod_serv", UNKNOWN_CLAVE_PROD, code=clave)

    unidad = check.text(item, "clave_unidad")
    if unidad is not None:
        if not _CLAVE_UNIDAD.fullmatch(unidad):
            check.error("clave_unidad", BAD_CLAVE_UNIDAD)
        elif not clave_unidad_exists(unidad):
            check.error("clave_unidad", UNKNOWN_CLAVE_UNIDAD, code=unidad)

    quantity = check.text(item, "quantity")
    if quantity is not None:
        quantity = _decimal(quantity, _DECIMAL6)
        if quantity is None or quantity <= 0:
            check.error("quantity", BAD_QUANTITY)
            quantity = None

    price = check.text(item, "unit_price")
    if price is not None:
        price = _decimal(price, _DECIMAL6)
        if price is None:
            check.error("unit_price", BAD_PRICE)

    objeto = check.text(item, "objeto_imp")
    if objeto is not None and objeto not in (OBJETO_NO_OBJETO, OBJETO_SI_OBJETO):
        check.error("objeto_imp", BAD_OBJETO)
        objeto = None

    factor = check.text(item, "tax_factor", required=objeto == OBJETO_SI_OBJETO)
    rate_text = check.text(item, "tax_rate", required=objeto == OBJETO_SI_OBJETO and factor == TASA)
    rate = None
    if objeto == OBJETO_NO_OBJETO:
        if factor:
            check.error("tax_factor", NO_TAX_EXPECTED)
        if rate_text:
            check.error("tax_rate", NO_TAX_EXPECTED)
    elif objeto == OBJETO_SI_OBJETO and factor is not None:
        if factor not in (TASA, EXENTO):
            check.error("tax_factor", BAD_FACTOR)
        elif factor == EXENTO and rate_text:
            check.error("tax_rate", NO_TAX_EXPECTED)
        elif factor == TASA and rate_text is not None:
            rate = _decimal(rate_text, _RATE)
            if rate not in RATES:
                check.error("tax_rate", BAD_RATE)
                rate = None
            else:
                rate = rate.quantize(Decimal("0.000001"))

    if check.errors:
        return None
    try:
        return Line(
            description=description,
            clave_prod_serv=clave,
            clave_unidad=unidad,
            quantity=quantity,
            unit_price=price,
            objeto_imp=objeto,
            tax_factor=factor or None if objeto == OBJETO_SI_OBJETO else None,
            tax_rate=rate,
        )
    except (TypeError, ValueError) as exc:  # pragma: no cover (the checks above cover Line's)
        check.errors.append(FieldError(check.prefix, str(exc)))
        return None
