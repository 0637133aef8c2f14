"""Spanish messages for the domain's problem codes, shown next to their field."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from webapp.fiscal.limits import NOMBRE_MAX
from webapp.issuing.lookup import TicketProblem

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
