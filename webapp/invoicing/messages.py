"""Spanish messages for the domain's problem codes, shown next to their field."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from webapp.fiscal.ec_buyer import DIRECCION_MAX
from webapp.fiscal.limits import NOMBRE_MAX
from webapp.issuing.lookup import TicketProblem
from webapp.sri import catalogs as sri_catalogs

TICKET = {
    TicketProblem.NOT_FOUND: _l(
        "No encontramos ese número de ticket en esta sucursal. Revise el número impreso y la "
        "sucursal elegida."
    ),
    TicketProblem.ORDER_MISMATCH: _l(
        "El número de orden no corresponde a ese ticket. Cópielo tal como aparece impreso."
    ),
    TicketProblem.TOTAL_MISMATCH: _l(
        "El total no coincide. Escriba el total tal como aparece impreso en el ticket, con "
        "centavos."
    ),
    TicketProblem.ALREADY_INVOICED: _l("Este ticket ya fue facturado."),
    TicketProblem.OUT_OF_WINDOW: _l(
        "El plazo para facturar este ticket ya terminó. Consulte en la sucursal."
    ),
    TicketProblem.IN_GLOBAL: _l(
        "Este ticket ya forma parte de la factura global del periodo y el comercio no permite "
        "facturarlo por separado. Consulte en la sucursal."
    ),
    TicketProblem.CANCELLED: _l("Este ticket fue cancelado y no se puede facturar."),
    TicketProblem.REPEATED: _l("Este ticket ya está agregado a esta factura."),
}

REQUIRED = {
    "branch": _l("Elija la sucursal donde compró."),
    "rfc": _l("Escriba su RFC."),
    "order_number": _l("Escriba el número de orden."),
    "ticket_number": _l("Escriba el número de ticket."),
    "total": _l("Escriba el total del ticket."),
    "forma_pago": _l("Elija la forma de pago."),
    "nombre": _l("Escriba su nombre o razón social."),
    "cp": _l("Escriba el código postal de su domicilio fiscal."),
    "regimen": _l("Elija su régimen fiscal."),
    "uso_cfdi": _l("Elija el uso del CFDI."),
    "email": _l("Escriba su correo electrónico."),
}

DIGITS_ONLY = _l("Escriba sólo los números, sin letras ni símbolos.")
BAD_TOTAL = _l("Escriba el total con números y hasta dos decimales, por ejemplo 1234.50.")
BAD_EMAIL = _l("Escriba un correo electrónico válido, por ejemplo nombre@dominio.com.")
BAD_FORMA_PAGO = _l("Elija una de las formas de pago de la lista.")
NO_TICKETS = _l("Agregue al menos un ticket.")

# Receptor and RFC problems by (field, problem code); see webapp.fiscal.
FISCAL = {
    ("rfc", "format"): _l(
        "El RFC no tiene el formato correcto: 12 caracteres para personas morales y 13 para "
        "personas físicas."
    ),
    ("rfc", "check_digit"): _l(
        "El RFC no es válido: revise cada carácter; el último es un dígito verificador."
    ),
    ("rfc", "generic"): _l(
        "El RFC genérico no se puede usar para facturar un ticket a su nombre. Escriba su RFC."
    ),
    ("nombre", "not_uppercase"): _l(
        "Escriba el nombre en mayúsculas, exactamente como aparece en su Constancia de "
        "Situación Fiscal."
    ),
    ("nombre", "has_suffix"): _l(
        "Escriba la razón social sin el régimen societario (por ejemplo, sin «S.A. DE C.V.»), "
        "como aparece en su Constancia de Situación Fiscal."
    ),
    ("nombre", "too_long"): _l("El nombre admite como máximo %(max)s caracteres.", max=NOMBRE_MAX),
    ("nombre", "format"): _l("El nombre no puede llevar el carácter «|»."),
    ("cp", "format"): _l("El código postal tiene 5 dígitos."),
    ("cp", "unknown"): _l(
        "Ese código postal no está en el catálogo del SAT. Use el de su Constancia de Situación "
        "Fiscal."
    ),
    ("regimen", "unknown"): _l("Elija un régimen fiscal de la lista."),
    ("regimen", "wrong_person_type"): _l(
        "Ese régimen fiscal no corresponde al tipo de persona de su RFC (12 caracteres: moral; "
        "13: física)."
    ),
    ("regimen", "not_for_receptor"): _l(
        "Ese régimen fiscal no puede recibir facturas de ningún uso. Revise su Constancia de "
        "Situación Fiscal."
    ),
    ("uso_cfdi", "unknown"): _l("Elija un uso del CFDI de la lista."),
    ("uso_cfdi", "not_for_regimen"): _l(
        "Ese uso del CFDI no está permitido para el régimen fiscal elegido."
    ),
}


def fiscal_message(field: str, problem: str):
    if problem == "empty":
        return REQUIRED[field]
    return FISCAL.get((field, str(problem)), REQUIRED[field])


# Ecuador (SRI): the buyer's problems by (field, problem code), and by the tipo de
# identificación for the identification itself; see webapp.fiscal.ec_buyer.
EC_REQUIRED = {
    "id_type": _l("Elija el tipo de identificación."),
    "identificacion": _l("Escriba su identificación."),
    "nombre": _l("Escriba su razón social, o sus nombres y apellidos."),
    "direccion": _l("Escriba su dirección."),
}
EC_IDENTIFICACION = {
    ("format", sri_catalogs.RUC): _l("El RUC tiene 13 dígitos y termina en 001."),
    ("check_digit", sri_catalogs.RUC): _l(
        "El RUC no es válido: revise sus 13 dígitos; debe ser el de su registro en el SRI."
    ),
    ("format", sri_catalogs.CEDULA): _l("La cédula tiene 10 dígitos."),
    ("check_digit", sri_catalogs.CEDULA): _l(
        "La cédula no es válida: revise sus 10 dígitos; el último es un dígito verificador."
    ),
    ("format", sri_catalogs.PASAPORTE): _l(
        "Escriba el pasaporte con letras y números, de 3 a 20 caracteres."
    ),
    ("format", sri_catalogs.EXTERIOR): _l(
        "Escriba la identificación con letras y números, hasta 20 caracteres."
    ),
}
EC_FISCAL = {
    ("id_type", "unknown"): _l("Elija un tipo de identificación de la lista."),
    ("total", "generic"): _l(
        "Una factura de más de US$ %(limit)s no puede emitirse a consumidor final. Cambie la "
        "identificación por su cédula, RUC o pasaporte.",
        limit=sri_catalogs.CONSUMIDOR_FINAL_LIMITE,
    ),
    ("nombre", "too_long"): FISCAL[("nombre", "too_long")],
    ("direccion", "too_long"): _l(
        "La dirección admite como máximo %(max)s caracteres.", max=DIRECCION_MAX
    ),
}


def ec_message(field: str, problem: str, id_type: str = ""):
    """The Spanish message of an Ecuadorian buyer's problem next to `field`."""
    if problem == "empty":
        return EC_REQUIRED[field]
    if field == "identificacion":
        return EC_IDENTIFICACION.get((str(problem), id_type), EC_REQUIRED[field])
    return EC_FISCAL.get((field, str(problem)), EC_REQUIRED.get(field, REQUIRED.get(field)))
